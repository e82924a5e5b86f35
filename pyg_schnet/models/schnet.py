"""SchNet."""
from typing import List, Optional

import torch
from torch import Tensor

from pyg_schnet.graph import MAX_Z
from pyg_schnet.models.potential import AtomisticModel, check_arguments
from pyg_schnet.nn import (
    Atomwise,
    GaussianRBF,
    SchNetInteraction,
    ShiftedSoftplus,
)


class SchNet(AtomisticModel):
    r"""SchNet from the `"SchNet: A continuous-filter convolutional neural
    network for modeling quantum interactions"
    <https://arxiv.org/abs/1706.08566>`_ paper and K. T. Schütt's thesis
    ("Learning Representations of Atomistic Systems with Deep Neural
    Networks", ch. 6)

    .. math::
        \mathbf{x}_i^{(0)} = \mathbf{a}_{Z_i}, \qquad
        \mathbf{x}_i^{(t+1)} = \mathbf{x}_i^{(t)} +
        \mathbf{v}^{(t)}_i(\mathbf{x}^{(t)}, \{d_{ij}\}), \qquad
        E = \sum_i \left(\sigma\, \mathrm{NN}(\mathbf{x}_i^{(T)}) + \mu +
        E^{\mathrm{ref}}_{Z_i}\right),

    with an element embedding :math:`\mathbf{a}_Z` (:math:`Z \le`
    :obj:`max_z`), :math:`T` :class:`~pyg_schnet.nn.SchNetInteraction`
    blocks (each with its own weights) on a radius graph, the
    :class:`~pyg_schnet.nn.GaussianRBF` expansion of the distances on
    :math:`[0, r_c]`, and the :class:`~pyg_schnet.nn.Atomwise` readout
    :math:`\mathrm{NN} = \mathrm{Dense}(H \to H/2, \mathrm{ssp})`,
    :math:`\mathrm{Dense}(H/2 \to 1)`. Forces and stress come from
    :meth:`forward` by automatic differentiation.

    The defaults are SchNetPack's QM9 model (and the thesis' size: 128
    features, 6 interactions). Where they differ from the 2017 paper
    (`arXiv:1706.08566 <https://arxiv.org/abs/1706.08566>`_), the paper's
    choice is an argument away:

    * Gaussians: width = spacing (:math:`50` on :math:`[0, 5]` Å:
      :math:`\sigma = 0.102` Å); the paper uses
      :math:`\exp(-\gamma (d - \mu_k)^2)`, :math:`\gamma = 10`
      Å\ :sup:`-2`, every 0.1 Å up to 30 Å:
      :obj:`num_gaussians=301, cutoff=30.0, gaussian_width=20**-0.5`.
    * Filter network: one shifted softplus (SchNetPack); the paper has one
      after each dense layer: :obj:`filter_activations=2`.
    * Cutoff: the cosine cutoff at 5 Å of the 2018 SchNet paper
      (`arXiv:1712.06113 <https://arxiv.org/abs/1712.06113>`_). The 2017
      paper's model and the original SchNet code have no cutoff function:
      :obj:`envelope="none"` (filters undamped; pairs beyond the cutoff
      still excluded). A large cutoff alone is not the same: the cosine
      still damps every filter (by 0.933 at 5 Å with a 30 Å cutoff).

    * Initialisation: Glorot uniform weights, zero biases,
      :math:`\mathcal{N}(0, 1)` embeddings (PyTorch's default).

    The original SchNet code (TensorFlow,
    ``atomistic-machine-learning/SchNet``) computes exactly this model with
    :obj:`num_gaussians=200, cutoff=20.0, gaussian_width=0.05**0.5`
    (centres :math:`20k/199` Å, :math:`\gamma = 10` Å\ :sup:`-2`),
    :obj:`filter_activations=2, envelope="none"`; its interaction block
    (in2fac without bias, fac2out with bias and ssp, a linear dense layer)
    and output network are this class's; its ssp switches to :math:`x -
    \ln 2` above 14 (:obj:`ssp_threshold=14.0`; torch's softplus does
    above 20, which moves the C20 models' forces by up to
    :math:`9 \cdot 10^{-6}` eV/Å on strongly distorted cages).
    :func:`~pyg_schnet.models.load_original_schnet` reads its model folders.

    Args:
        hidden_channels (int, optional): Atom feature size :math:`H`.
            (default: :obj:`128`)
        num_filters (int, optional): Filters :math:`F` per convolution.
            (default: :obj:`128`)
        num_interactions (int, optional): Interaction blocks :math:`T`.
            (default: :obj:`6`)
        num_gaussians (int, optional): Gaussians of the distance expansion.
            (default: :obj:`50`)
        cutoff (float, optional): Cutoff radius :math:`r_c` in Å of the
            graph and the cosine cutoff. (default: :obj:`5.0`)
        gaussian_width (float, optional): Width of the Gaussians in Å
            (default: :obj:`None`, their spacing).
        filter_activations (int, optional): Shifted softplus layers in each
            filter network, :obj:`1` or :obj:`2` (the original SchNet code).
            (default: :obj:`1`)
        readout (str, optional): :obj:`"sum"` for extensive targets such as
            energies, :obj:`"mean"` for intensive ones. (default: :obj:`"sum"`)
        max_z (int, optional): Largest atomic number. (default: :obj:`100`)
        atomref (torch.Tensor, optional): Per-element reference energies in
            eV, :obj:`[max_z + 1]`. (default: :obj:`None`)
        mean (float, optional): Per-atom shift :math:`\mu` (eV).
            (default: :obj:`0.0`)
        std (float, optional): Per-atom scale :math:`\sigma` (eV).
            (default: :obj:`1.0`)
        envelope (str, optional): The filters' cutoff function:
            :obj:`"cosine"` or :obj:`"none"` (a step at the cutoff, the
            original SchNet code). (default: :obj:`"cosine"`)
        ssp_threshold (float, optional): Above it the shifted softplus is
            taken as :math:`x - \ln 2`: torch's 20, the original SchNet
            code's 14. (default: :obj:`20.0`)
        properties (list of str, optional): Property heads on the final
            atom features, computed by :meth:`compute` with the energy:
            :obj:`"dipole"` (latent charges,
            :class:`~pyg_schnet.nn.properties.Dipole`),
            :obj:`"polarizability"`
            (:class:`~pyg_schnet.nn.properties.Polarizability`),
            :obj:`"spatial_extent"`
            (:class:`~pyg_schnet.nn.properties.SpatialExtent`).
            (default: :obj:`None`, none)

    Shapes:
        - **input:** :class:`~torch_geometric.data.Data` or
          :class:`~torch_geometric.data.Batch` with :obj:`z` :math:`(N)`,
          :obj:`pos` :math:`(N, 3)` in Å, optionally :obj:`batch`,
          :obj:`cell` :math:`(B, 3, 3)`, :obj:`pbc` :math:`(B, 3)`,
          :obj:`edge_index`, :obj:`cell_offsets`
        - **output:** energy :math:`(B)` in eV; forces :math:`(N, 3)` in
          eV/Å and stress :math:`(B, 3, 3)` in eV/Å³ when asked
    """
    def __init__(self, hidden_channels: int = 128, num_filters: int = 128,
                 num_interactions: int = 6, num_gaussians: int = 50,
                 cutoff: float = 5.0, gaussian_width: Optional[float] = None,
                 filter_activations: int = 1, readout: str = 'sum',
                 max_z: int = MAX_Z, atomref: Optional[Tensor] = None,
                 mean: float = 0.0, std: float = 1.0,
                 envelope: str = 'cosine', ssp_threshold: float = 20.0,
                 properties: Optional[List[str]] = None):
        super().__init__(cutoff, max_z)
        check_arguments(hidden_channels=(hidden_channels, int, 2),
                        num_filters=(num_filters, int, 1),
                        num_interactions=(num_interactions, int, 0),
                        num_gaussians=(num_gaussians, int, 2))
        self.hidden_channels = hidden_channels
        self.num_filters = num_filters
        self.num_interactions = num_interactions
        self.num_gaussians = num_gaussians
        self.embedding = torch.nn.Embedding(max_z + 1, hidden_channels)
        self.rbf = GaussianRBF(0.0, cutoff, num_gaussians, gaussian_width)
        self.interactions = torch.nn.ModuleList([
            SchNetInteraction(hidden_channels, num_filters, num_gaussians,
                              cutoff, filter_activations, envelope,
                              ssp_threshold)
            for _ in range(num_interactions)
        ])
        self.readout = Atomwise(hidden_channels, 1, hidden_channels // 2,
                                activation='ssp' if ssp_threshold == 20.0
                                else ShiftedSoftplus(ssp_threshold),
                                aggr=readout, mean=mean, std=std)
        self._add_heads(properties, hidden_channels)
        if atomref is not None:
            self.set_atomref(atomref)
        self.reset_parameters()

    def representation(self, z: Tensor, edge_index: Tensor,
                       edge_weight: Tensor, symmetric: bool = False
                       ) -> Tensor:
        r"""As :meth:`AtomisticModel.representation`, with the cutoff
        function :math:`f_c(d)` and the expansion computed once and shared
        by every interaction (they have one cutoff)."""
        x = self.embedding(z)
        edge_attr = self.rbf(edge_weight)
        cutoff_values: Optional[Tensor] = None
        for interaction in self.interactions:
            if cutoff_values is None:
                cutoff_values = interaction.conv.cutoff_fn(edge_weight)
            x = x + interaction(x, edge_index, edge_weight, edge_attr,
                                symmetric, cutoff_values)
        return x

    def memory_widths(self):
        r"""The sizes :func:`~pyg_schnet.models.memory.memory_estimate`
        needs: radial basis size, pair features of each pass, atom
        features."""
        return (self.num_gaussians,
                [self.num_filters] * self.num_interactions,
                self.hidden_channels)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'hidden_channels={self.hidden_channels}, '
                f'num_filters={self.num_filters}, '
                f'num_interactions={self.num_interactions}, '
                f'num_gaussians={self.num_gaussians}, cutoff={self.cutoff}, '
                f"readout='{self.readout.aggr}'{self._extra_repr()})")

    def _extra_repr(self) -> str:
        conv = self.interactions[0].conv if len(self.interactions) else None
        if conv is None:
            return self._heads_repr()
        extra = ''
        if conv.filter_activations != 1:
            extra += f', filter_activations={conv.filter_activations}'
        if conv.envelope != 'cosine':
            extra += f", envelope='{conv.envelope}'"
        if conv.ssp_threshold != 20.0:
            extra += f', ssp_threshold={conv.ssp_threshold}'
        return extra + self._heads_repr()
