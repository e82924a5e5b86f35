"""The deep tensor neural network (DTNN)."""
from typing import List, Optional

import torch
from torch import Tensor

from pyg_schnet.graph import MAX_Z
from pyg_schnet.models.potential import AtomisticModel, check_arguments
from pyg_schnet.nn import Atomwise, DTNNInteraction, GaussianRBF


class DTNN(AtomisticModel):
    r"""The deep tensor neural network from the `"Quantum-chemical insights
    from deep tensor neural networks"
    <https://www.nature.com/articles/ncomms13890>`_ paper and K. T. Schütt's
    thesis (ch. 5)

    .. math::
        \mathbf{x}_i^{(0)} = \mathbf{c}_{Z_i}, \qquad
        \mathbf{x}_i^{(t+1)} = \mathbf{x}_i^{(t)} +
        \sum_{j \ne i} \mathbf{v}_{ij}^{(t)}, \qquad
        E = \sum_i \left(\sigma\,\mathbf{w}_2^{\top} \tanh(\mathbf{W}_1
        \mathbf{x}_i^{(T)} + \mathbf{b}_1) + b_2 + \mu +
        E^{\mathrm{ref}}_{Z_i}\right),

    with :math:`\mathbf{v}_{ij}` the factorised tensor interaction
    (:class:`~pyg_schnet.nn.DTNNInteraction`) of the Gaussian expansion of
    :math:`d_{ij}` (:class:`~pyg_schnet.nn.GaussianRBF`). With
    :obj:`smooth_cutoff=True` each message is multiplied by the cosine
    cutoff, so energies stay continuous on a radius graph;
    :obj:`smooth_cutoff=False` is the original network restricted to pairs
    closer than the cutoff (a hard step: pairs at :math:`d \geq r_c`
    contribute nothing, whatever graph is passed in).

    Defaults follow the original code (``atomistic-machine-learning/dtnn``)
    in size: 30 atom features, 60 factors, :math:`T = 3` passes sharing one
    set of interaction weights, a 20 Å cutoff and an output network of 15
    tanh units; and, with :obj:`init="dtnn"`, in initialisation:
    :math:`\mathbf{W}^{fc}` and the last readout layer start at zero and
    the embeddings are drawn from :math:`\mathcal{N}(0, 1/\sqrt{C})`
    (Glorot uniform and :math:`\mathcal{N}(0, 1)` with
    :obj:`init="glorot"`). Where it differs by default:

    * Gaussians: centres every :obj:`gaussian_spacing` = 0.2 Å from 0 to
      the cutoff, i.e. 101 of them on :math:`[0, 20]` Å, width = spacing.
      The original has 100 centres on :math:`[0, 20]` Å (spacing 20/99 Å)
      and width 0.2 Å: :obj:`num_gaussians=100, gaussian_width=0.2`.
    * The smooth cutoff (:obj:`smooth_cutoff=True`); the original has none
      (:obj:`smooth_cutoff=False` with a cutoff beyond the largest
      distance reproduces it).

    Args:
        channels (int, optional): Atom feature size. (default: :obj:`30`)
        num_factors (int, optional): Factors of the tensor interaction.
            (default: :obj:`60`)
        num_interactions (int, optional): Passes :math:`T`.
            (default: :obj:`3`)
        shared_interactions (bool, optional): One set of interaction weights
            for all passes (the original DTNN), or one per pass.
            (default: :obj:`True`)
        gaussian_spacing (float, optional): Spacing of the Gaussians in Å,
            used when :obj:`num_gaussians` is :obj:`None`.
            (default: :obj:`0.2`)
        num_gaussians (int, optional): Number of Gaussians on
            :math:`[0, r_c]`, overriding :obj:`gaussian_spacing`.
            (default: :obj:`None`)
        gaussian_width (float, optional): Width of the Gaussians in Å
            (default: :obj:`None`, the spacing).
        cutoff (float, optional): Cutoff radius in Å. (default: :obj:`20.0`)
        smooth_cutoff (bool, optional): Multiply messages by the cosine
            cutoff (:obj:`True`) or by the step :math:`[d < r_c]`.
            (default: :obj:`True`)
        hidden_channels (int, optional): Units of the tanh output layer.
            (default: :obj:`15`)
        readout (str, optional): :obj:`"sum"` or :obj:`"mean"`.
            (default: :obj:`"sum"`)
        max_z (int, optional): Largest atomic number. (default: :obj:`100`)
        atomref (torch.Tensor, optional): Per-element reference energies in
            eV, :obj:`[max_z + 1]`. (default: :obj:`None`)
        mean (float, optional): Per-atom shift :math:`\mu` (eV).
            (default: :obj:`0.0`)
        std (float, optional): Per-atom scale :math:`\sigma` (eV).
            (default: :obj:`1.0`)
        init (str, optional): :obj:`"dtnn"` (the original code's
            initialisation) or :obj:`"glorot"`. (default: :obj:`"dtnn"`)
        properties (list of str, optional): Property heads, as in
            :class:`SchNet`. (default: :obj:`None`, none)

    Shapes:
        - **input:** as :class:`SchNet`
        - **output:** energy :math:`(B)` in eV; forces :math:`(N, 3)` in
          eV/Å and stress :math:`(B, 3, 3)` in eV/Å³ when asked
    """
    def __init__(self, channels: int = 30, num_factors: int = 60,
                 num_interactions: int = 3, shared_interactions: bool = True,
                 gaussian_spacing: float = 0.2,
                 num_gaussians: Optional[int] = None,
                 gaussian_width: Optional[float] = None,
                 cutoff: float = 20.0, smooth_cutoff: bool = True,
                 hidden_channels: int = 15, readout: str = 'sum',
                 max_z: int = MAX_Z, atomref: Optional[Tensor] = None,
                 mean: float = 0.0, std: float = 1.0, init: str = 'dtnn',
                 properties: Optional[List[str]] = None):
        super().__init__(cutoff, max_z)
        check_arguments(channels=(channels, int, 1),
                        num_factors=(num_factors, int, 1),
                        num_interactions=(num_interactions, int, 1),
                        hidden_channels=(hidden_channels, int, 1),
                        shared_interactions=(shared_interactions, bool),
                        smooth_cutoff=(smooth_cutoff, bool))
        if init not in ('dtnn', 'glorot'):
            raise ValueError(f"'init' must be 'dtnn' or 'glorot' (got "
                             f"{init!r})")
        self.channels = channels
        self.num_factors = num_factors
        self.num_interactions = num_interactions
        self.shared_interactions = shared_interactions
        self.gaussian_spacing = float(gaussian_spacing)
        self.smooth_cutoff = smooth_cutoff
        self.init = init
        self.embedding = torch.nn.Embedding(max_z + 1, channels)
        if num_gaussians is None:
            self.rbf = GaussianRBF.from_spacing(0.0, cutoff, gaussian_spacing,
                                                gaussian_width)
        else:
            self.rbf = GaussianRBF(0.0, cutoff, num_gaussians, gaussian_width)
        num_blocks = 1 if shared_interactions else num_interactions
        self.interactions = torch.nn.ModuleList([
            DTNNInteraction(channels, num_factors, self.rbf.num_gaussians,
                            cutoff, smooth=smooth_cutoff, init=init)
            for _ in range(num_blocks)
        ])
        self.readout = Atomwise(channels, 1, hidden_channels,
                                activation='tanh', aggr=readout, mean=mean,
                                std=std)
        self._add_heads(properties, channels)
        if atomref is not None:
            self.set_atomref(atomref)
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        if self.init == 'dtnn':
            torch.nn.init.normal_(self.embedding.weight,
                                  std=self.channels**-0.25)
            torch.nn.init.zeros_(self.readout.lin2.weight)

    def interaction_blocks(self) -> List[torch.nn.Module]:
        r"""One block per pass; with :obj:`shared_interactions` the same
        block :math:`T` times."""
        if self.shared_interactions:
            return [self.interactions[0]] * self.num_interactions
        return list(self.interactions)

    def memory_widths(self):
        r"""The sizes :func:`~pyg_schnet.models.memory.memory_estimate`
        needs: radial basis size, pair features of each pass (factors and
        the message), atom features."""
        return (self.rbf.num_gaussians,
                [self.num_factors + self.channels] * self.num_interactions,
                self.channels)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(channels={self.channels}, '
                f'num_factors={self.num_factors}, '
                f'num_interactions={self.num_interactions}, '
                f'shared_interactions={self.shared_interactions}, '
                f'num_gaussians={self.rbf.num_gaussians}, '
                f'cutoff={self.cutoff}, smooth_cutoff={self.smooth_cutoff}, '
                f"readout='{self.readout.aggr}', init='{self.init}'"
                f'{self._heads_repr()})')
