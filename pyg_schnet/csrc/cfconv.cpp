// The fused continuous-filter convolution of SchNet (pyg_schnet.nn.fused).
//
//   W_p  = f_p * act2( W2 ssp(W1 e_p + b1) + b2 )          (filter of pair p)
//   y_i += x_j (.) W_p      and, with `symmetric`,  y_j += x_i (.) W_p
//
// with ssp(h) = softplus(h) - ln 2 (softplus taken as h above `threshold`,
// as torch's) and act2 = ssp when `activations` is 2, the identity when 1.
// With `save` (small graphs), the filters and the activations' derivatives
// are computed for all pairs at once and returned for the backward pass.
// Without it (large graphs), pairs are processed in tiles of kTile: each
// tile's filters are computed into tile-sized buffers (two small GEMMs),
// used and dropped, so no [P, F] tensor is kept, and the backward pass
// recomputes them from the inputs (NNPOps' design). Threads
// (at::parallel_for over tiles) scatter into their own [N, F] buffers,
// summed at the end: the result does not depend on the order in which
// tiles finish.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <vector>

namespace {

void check_inputs(const at::Tensor& x, const at::Tensor& rbf,
                  const at::Tensor& fc, const at::Tensor& w1,
                  const at::Tensor& b1, const at::Tensor& w2,
                  const at::Tensor& b2, const at::Tensor& i,
                  const at::Tensor& j, int64_t activations) {
  TORCH_CHECK(x.dim() == 2 && rbf.dim() == 2 && fc.dim() == 1,
              "cfconv: x [N, F], rbf [P, K], fc [P] expected");
  const int64_t F = x.size(1), K = rbf.size(1), P = rbf.size(0);
  TORCH_CHECK(w1.sizes() == at::IntArrayRef({F, K}) && b1.numel() == F &&
                  w2.sizes() == at::IntArrayRef({F, F}) && b2.numel() == F,
              "cfconv: weights of shapes [F, K], [F], [F, F], [F] expected");
  TORCH_CHECK(fc.size(0) == P && i.numel() == P && j.numel() == P,
              "cfconv: rbf, fc, i and j must have one row per pair");
  TORCH_CHECK(i.scalar_type() == at::kLong && j.scalar_type() == at::kLong,
              "cfconv: pair indices must be int64");
  TORCH_CHECK(activations == 1 || activations == 2,
              "cfconv: activations must be 1 or 2");
  for (const auto* t : {&rbf, &fc, &w1, &b1, &w2, &b2}) {
    TORCH_CHECK(t->scalar_type() == x.scalar_type(),
                "cfconv: every floating input must have x's dtype");
  }
  TORCH_CHECK(x.device().is_cpu(), "cfconv: CPU tensors only");
  // Indices are used as raw offsets: out-of-range ones would write outside
  // the output, so they are refused.
  const int64_t N = x.size(0);
  for (const auto* t : {&i, &j}) {
    if (t->numel() == 0) continue;
    auto [lo, hi] = at::aminmax(*t);
    TORCH_CHECK(lo.item<int64_t>() >= 0 && hi.item<int64_t>() < N,
                "cfconv: pair indices must lie in [0, ", N, ")");
  }
}

// The filter of the pairs [p0, p0 + n), before the cutoff (`raw`, [n, F]),
// with what the backward pass needs: dh = ssp'(h) and, with two
// activations, dg = ssp'(g); `s` = ssp(h) (the input of W2) when asked.
struct TileFilters {
  at::Tensor raw, dh, dg, s;
};

// ssp'(v) as torch's softplus_backward takes it: 1 above the threshold.
at::Tensor ssp_grad(const at::Tensor& v, double threshold) {
  at::Tensor d = at::sigmoid(v);
  if (v.numel() > 0 && v.max().item<double>() > threshold) {
    d.masked_fill_(v > threshold, 1);
  }
  return d;
}

TileFilters tile_filters(const at::Tensor& rbf, const at::Tensor& w1t,
                         const at::Tensor& b1, const at::Tensor& w2t,
                         const at::Tensor& b2, int64_t p0, int64_t n,
                         double threshold, int64_t activations,
                         bool derivatives, bool keep_s) {
  const double ln2 = std::log(2.0);
  TileFilters t;
  const at::Tensor h = at::addmm(b1, rbf.narrow(0, p0, n), w1t);
  // torch's own (vectorised) softplus: the reference path's numbers.
  const at::Tensor s = at::softplus(h, 1, threshold).sub_(ln2);
  const at::Tensor g = at::addmm(b2, s, w2t);
  t.raw = activations == 2 ? at::softplus(g, 1, threshold).sub_(ln2) : g;
  if (derivatives) {
    t.dh = ssp_grad(h, threshold);
    if (activations == 2) t.dg = ssp_grad(g, threshold);
  }
  if (keep_s) t.s = s;
  return t;
}

// Pairs per tile: big enough for efficient GEMMs, small enough for the
// tile's [kTile, F] buffers to stay in cache (kept filters are copied out
// of them tile by tile: one tile of all pairs was measured 1.3x slower per
// edge at 4,000 Cu atoms than tiles with recomputation).
constexpr int64_t kTile = 512;

// One [N, F] accumulator per thread (thread 0 writes into `out` itself).
struct Accumulators {
  at::Tensor out;
  std::vector<at::Tensor> extra;
  Accumulators(const at::Tensor& like, int64_t threads)
      : out(at::zeros_like(like)) {
    for (int64_t t = 1; t < threads; ++t) extra.push_back(at::zeros_like(like));
  }
  at::Tensor& of(int64_t thread) {
    return thread == 0 ? out : extra[thread - 1];
  }
  at::Tensor sum() {
    for (auto& e : extra) out.add_(e);
    return out;
  }
};

int64_t count_threads(int64_t tiles) {
  return std::min<int64_t>(at::get_num_threads(), std::max<int64_t>(tiles, 1));
}

// y_i += f x_j (.) raw (and y_j += f x_i (.) raw) for the tile's pairs.
template <typename T>
void scatter(T* yp, const T* xp, const T* fp, const T* wp, const int64_t* ip,
             const int64_t* jp, int64_t p0, int64_t n, int64_t F,
             bool symmetric) {
  for (int64_t q = 0; q < n; ++q) {
    const int64_t p = p0 + q;
    const T f = fp[p];
    if (f == T(0)) continue;
    const T* __restrict__ w = wp + q * F;
    const T* __restrict__ xj = xp + jp[p] * F;
    T* __restrict__ yi = yp + ip[p] * F;
    for (int64_t c = 0; c < F; ++c) yi[c] += xj[c] * (f * w[c]);
    if (symmetric) {
      const T* __restrict__ xi = xp + ip[p] * F;
      T* __restrict__ yj = yp + jp[p] * F;
      for (int64_t c = 0; c < F; ++c) yj[c] += xi[c] * (f * w[c]);
    }
  }
}

template <typename T>
std::vector<at::Tensor> forward_impl(
    const at::Tensor& x, const at::Tensor& rbf, const at::Tensor& fc,
    const at::Tensor& w1, const at::Tensor& b1, const at::Tensor& w2,
    const at::Tensor& b2, const at::Tensor& i, const at::Tensor& j,
    double threshold, int64_t activations, bool symmetric, bool save) {
  const int64_t P = rbf.size(0), F = x.size(1);
  const int64_t tile = kTile;
  const int64_t tiles = (P + tile - 1) / tile;
  const int64_t threads = count_threads(tiles);
  Accumulators acc(x, threads);
  const at::Tensor w1t = w1.t(), w2t = w2.t();
  // Outputs never alias one another (torch.library's rule): one empty
  // tensor each when nothing is kept.
  std::vector<at::Tensor> kept;
  for (int k = 0; k < 3; ++k) {
    const bool used = save && (k < 2 || activations == 2);
    kept.push_back(used ? at::empty({P, F}, x.options())
                        : at::empty({0}, x.options()));
  }
  const T* xp = x.data_ptr<T>();
  const T* fp = fc.data_ptr<T>();
  const int64_t* ip = i.data_ptr<int64_t>();
  const int64_t* jp = j.data_ptr<int64_t>();
  at::parallel_for(0, tiles, 1, [&](int64_t begin, int64_t end) {
    T* yp = acc.of(at::get_thread_num()).template data_ptr<T>();
    for (int64_t k = begin; k < end; ++k) {
      const int64_t p0 = k * tile, n = std::min(tile, P - p0);
      TileFilters t = tile_filters(rbf, w1t, b1, w2t, b2, p0, n, threshold,
                                   activations, save, false);
      scatter<T>(yp, xp, fp, t.raw.data_ptr<T>(), ip, jp, p0, n, F,
                 symmetric);
      if (save) {
        kept[0].narrow(0, p0, n).copy_(t.raw);
        kept[1].narrow(0, p0, n).copy_(t.dh);
        if (activations == 2) kept[2].narrow(0, p0, n).copy_(t.dg);
      }
    }
  });
  return {acc.sum(), kept[0], kept[1], kept[2]};
}

template <typename T>
std::vector<at::Tensor> backward_impl(
    const at::Tensor& grad, const at::Tensor& x, const at::Tensor& rbf,
    const at::Tensor& fc, const at::Tensor& w1, const at::Tensor& b1,
    const at::Tensor& w2, const at::Tensor& b2, const at::Tensor& i,
    const at::Tensor& j, const at::Tensor& raw, const at::Tensor& dh,
    const at::Tensor& dg, double threshold, int64_t activations,
    bool symmetric, bool need_x, bool need_rbf, bool need_fc,
    bool need_weights) {
  const int64_t P = rbf.size(0), F = x.size(1), K = rbf.size(1);
  // Kept filters serve unless the weight gradients need ssp(h) too.
  const bool kept = raw.numel() > 0 && !need_weights;
  const int64_t tile = kTile;
  const int64_t tiles = (P + tile - 1) / tile;
  const int64_t threads = count_threads(tiles);
  const auto opts = x.options();
  at::Tensor empty = at::empty({0}, opts);
  Accumulators gx(need_x ? x : empty, need_x ? threads : 1);
  at::Tensor grbf = need_rbf ? at::empty({P, K}, opts) : at::Tensor();
  at::Tensor gfc = need_fc ? at::empty({P}, opts) : at::Tensor();
  // Per-thread weight gradients [gW1, gb1, gW2, gb2], summed at the end.
  std::vector<std::vector<at::Tensor>> gw(need_weights ? threads : 0);
  for (auto& t : gw) {
    t = {at::zeros_like(w1), at::zeros_like(b1), at::zeros_like(w2),
         at::zeros_like(b2)};
  }
  const bool need_filter_grad = need_rbf || need_weights;
  const at::Tensor w1t = w1.t(), w2t = w2.t();
  const T* xp = x.data_ptr<T>();
  const T* gp = grad.data_ptr<T>();
  const T* fp = fc.data_ptr<T>();
  const int64_t* ip = i.data_ptr<int64_t>();
  const int64_t* jp = j.data_ptr<int64_t>();
  at::parallel_for(0, tiles, 1, [&](int64_t begin, int64_t end) {
    const int64_t thread = at::get_thread_num();
    T* gxp = need_x ? gx.of(thread).template data_ptr<T>() : nullptr;
    for (int64_t k = begin; k < end; ++k) {
      const int64_t p0 = k * tile, n = std::min(tile, P - p0);
      TileFilters t;
      if (kept) {
        t = {raw.narrow(0, p0, n), dh.narrow(0, p0, n),
             activations == 2 ? dg.narrow(0, p0, n) : empty, empty};
      } else {
        t = tile_filters(rbf, w1t, b1, w2t, b2, p0, n, threshold,
                         activations, true, need_weights);
      }
      const T* wp = t.raw.data_ptr<T>();
      if (need_x) scatter<T>(gxp, gp, fp, wp, jp, ip, p0, n, F, symmetric);
      // dL/d(filter) of the tile, [n, F]: g_i x_j (+ g_j x_i).
      at::Tensor gfilt = at::empty({n, F}, opts);
      T* gfp = gfilt.data_ptr<T>();
      for (int64_t q = 0; q < n; ++q) {
        const int64_t p = p0 + q, a = ip[p], b = jp[p];
        const T* __restrict__ xi = xp + a * F;
        const T* __restrict__ xj = xp + b * F;
        const T* __restrict__ gi = gp + a * F;
        const T* __restrict__ gj = gp + b * F;
        T* __restrict__ out = gfp + q * F;
        if (symmetric) {
          for (int64_t c = 0; c < F; ++c) out[c] = gi[c] * xj[c] + gj[c] * xi[c];
        } else {
          for (int64_t c = 0; c < F; ++c) out[c] = gi[c] * xj[c];
        }
      }
      // dL/df = sum_c dL/dW_c raw_c; dL/d(raw) = dL/dW f.
      if (need_fc) gfc.narrow(0, p0, n).copy_((gfilt * t.raw).sum(1));
      if (!need_filter_grad) continue;
      // Through act2 (g -> raw), W2 (s -> g) and ssp (h -> s).
      at::Tensor gg = gfilt.mul_(fc.narrow(0, p0, n).unsqueeze(1));
      if (activations == 2) gg.mul_(t.dg);
      at::Tensor gh = at::mm(gg, w2).mul_(t.dh);
      if (need_rbf) grbf.narrow(0, p0, n).copy_(at::mm(gh, w1));
      if (need_weights) {
        auto& acc = gw[thread];
        acc[0].addmm_(gh.t(), rbf.narrow(0, p0, n));
        acc[1].add_(gh.sum(0));
        acc[2].addmm_(gg.t(), t.s);
        acc[3].add_(gg.sum(0));
      }
    }
  });
  auto none = [&] { return at::empty({0}, opts); };  // distinct empties
  std::vector<at::Tensor> out = {need_x ? gx.sum() : none(),
                                 need_rbf ? grbf : none(),
                                 need_fc ? gfc : none()};
  for (int64_t k = 0; k < 4; ++k) {
    if (!need_weights) {
      out.push_back(none());
      continue;
    }
    at::Tensor total = gw[0][k];
    for (int64_t t = 1; t < threads; ++t) total.add_(gw[t][k]);
    out.push_back(total);
  }
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> cfconv_cpu(
    const at::Tensor& x_, const at::Tensor& rbf_, const at::Tensor& fc_,
    const at::Tensor& w1_, const at::Tensor& b1_, const at::Tensor& w2_,
    const at::Tensor& b2_, const at::Tensor& i_, const at::Tensor& j_,
    double threshold, int64_t activations, bool symmetric, bool save) {
  check_inputs(x_, rbf_, fc_, w1_, b1_, w2_, b2_, i_, j_, activations);
  const auto x = x_.contiguous(), rbf = rbf_.contiguous(),
             fc = fc_.contiguous(), w1 = w1_.contiguous(),
             b1 = b1_.contiguous(), w2 = w2_.contiguous(),
             b2 = b2_.contiguous(), i = i_.contiguous(), j = j_.contiguous();
  std::vector<at::Tensor> out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "cfconv", [&] {
    out = forward_impl<scalar_t>(x, rbf, fc, w1, b1, w2, b2, i, j, threshold,
                                 activations, symmetric, save);
  });
  return {out[0], out[1], out[2], out[3]};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
           at::Tensor, at::Tensor>
cfconv_backward_cpu(const at::Tensor& grad_, const at::Tensor& x_,
                    const at::Tensor& rbf_, const at::Tensor& fc_,
                    const at::Tensor& w1_, const at::Tensor& b1_,
                    const at::Tensor& w2_, const at::Tensor& b2_,
                    const at::Tensor& i_, const at::Tensor& j_,
                    const at::Tensor& raw, const at::Tensor& dh,
                    const at::Tensor& dg, double threshold,
                    int64_t activations, bool symmetric, bool need_x,
                    bool need_rbf, bool need_fc, bool need_weights) {
  check_inputs(x_, rbf_, fc_, w1_, b1_, w2_, b2_, i_, j_, activations);
  TORCH_CHECK(grad_.sizes() == x_.sizes(),
              "cfconv_backward: grad must have x's shape");
  const bool kept = raw.numel() > 0;
  TORCH_CHECK(!kept || (raw.sizes() == at::IntArrayRef({rbf_.size(0),
                                                         x_.size(1)}) &&
                        dh.sizes() == raw.sizes() &&
                        (activations == 1 || dg.sizes() == raw.sizes())),
              "cfconv_backward: kept filters of shape [P, F] expected");
  const auto grad = grad_.contiguous().to(x_.scalar_type()),
             x = x_.contiguous(), rbf = rbf_.contiguous(),
             fc = fc_.contiguous(), w1 = w1_.contiguous(),
             b1 = b1_.contiguous(), w2 = w2_.contiguous(),
             b2 = b2_.contiguous(), i = i_.contiguous(), j = j_.contiguous();
  std::vector<at::Tensor> out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "cfconv_backward", [&] {
    out = backward_impl<scalar_t>(
        grad, x, rbf, fc, w1, b1, w2, b2, i, j, raw.contiguous(),
        dh.contiguous(), dg.contiguous(), threshold, activations, symmetric,
        need_x, need_rbf, need_fc, need_weights);
  });
  return {out[0], out[1], out[2], out[3], out[4], out[5], out[6]};
}

}  // namespace

TORCH_LIBRARY(pyg_schnet, m) {
  m.def(
      "cfconv(Tensor x, Tensor rbf, Tensor fc, Tensor w1, Tensor b1, "
      "Tensor w2, Tensor b2, Tensor i, Tensor j, float threshold, "
      "int activations, bool symmetric, bool save) -> (Tensor, Tensor, "
      "Tensor, Tensor)");
  m.def(
      "cfconv_backward(Tensor grad, Tensor x, Tensor rbf, Tensor fc, "
      "Tensor w1, Tensor b1, Tensor w2, Tensor b2, Tensor i, Tensor j, "
      "Tensor raw, Tensor dh, Tensor dg, "
      "float threshold, int activations, bool symmetric, bool need_x, "
      "bool need_rbf, bool need_fc, bool need_weights) -> (Tensor, Tensor, "
      "Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(pyg_schnet, CPU, m) {
  m.impl("cfconv", &cfconv_cpu);
  m.impl("cfconv_backward", &cfconv_backward_cpu);
}
