"""Response properties from invariant atom features and positions: the
dipole moment from latent charges, the polarizability tensor and the
electronic spatial extent."""
from typing import Optional, Tuple

import torch
from ase.data import atomic_masses
from torch import Tensor
from torch_geometric.utils import scatter

from pyg_schnet.nn.readout import Atomwise


def centre_of_mass(pos: Tensor, z: Tensor, batch: Tensor,
                   num_graphs: int) -> Tensor:
    r"""Centre of mass :math:`\mathbf{r}_c = \sum_i m_i \mathbf{r}_i /
    \sum_i m_i` (Å) of every graph, shape :obj:`[B, 3]`, with ASE's
    standard atomic masses (amu) of :obj:`z`."""
    masses = torch.as_tensor(atomic_masses, dtype=pos.dtype,
                             device=pos.device)[z]
    total = scatter(masses, batch, dim=0, dim_size=num_graphs, reduce='sum')
    moment = scatter(masses.unsqueeze(-1) * pos, batch, dim=0,
                     dim_size=num_graphs, reduce='sum')
    return moment / total.clamp_min(1e-12).unsqueeze(-1)


def _relative(pos: Tensor, z: Tensor, batch: Tensor,
              num_graphs: int) -> Tensor:
    return pos - centre_of_mass(pos, z, batch, num_graphs)[batch]


class _AtomwiseHead(torch.nn.Module):
    r"""A head with one :class:`Atomwise` network :obj:`net` of
    :obj:`outputs` numbers per atom (no aggregation)."""
    outputs = 1

    def __init__(self, in_channels: int,
                 hidden_channels: Optional[int] = None):
        super().__init__()
        self.in_channels = in_channels
        self.net = Atomwise(in_channels, self.outputs, hidden_channels)
        self.reset_parameters()

    def reset_parameters(self):
        self.net.reset_parameters()

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'hidden_channels={self.net.hidden_channels})')


class Dipole(_AtomwiseHead):
    r"""The dipole moment from latent atomic charges of the `"SchNet - a deep
    learning architecture for molecules and materials"
    <https://arxiv.org/abs/1712.06113>`_ paper (Sec. II.D), with the charges
    corrected to the system's total charge :math:`Q`

    .. math::
        \tilde q_i = \mathrm{NN}(\mathbf{x}_i), \qquad
        q_i = \tilde q_i - \frac{1}{n_{b}}\Big(\sum_{j \in b} \tilde q_j -
        Q_b\Big), \qquad
        \boldsymbol{\mu}_b = \sum_{i \in b} q_i\,(\mathbf{r}_i -
        \mathbf{r}_{c,b}),

    with :math:`\mathrm{NN}` an :class:`Atomwise` network (per atom, no
    aggregation), :math:`n_b` the atoms of graph :math:`b` and
    :math:`\mathbf{r}_{c,b}` its centre of mass. :math:`\sum_i q_i = Q`
    holds exactly, so for a neutral system the choice of origin does not
    matter; for an ion the dipole is the one about the centre of mass.
    :math:`\boldsymbol{\mu}` rotates with the molecule (the charges are
    invariant). Molecules only: the dipole of a periodic cell is not
    defined by positions alone.

    Args:
        in_channels (int): Atom feature size :math:`F`.
        hidden_channels (int, optional): Hidden size of :math:`\mathrm{NN}`.
            (default: :obj:`in_channels // 2`)

    Shapes:
        - **input:** atom features :math:`(N, F)`, positions :math:`(N, 3)`
          in Å, atomic numbers :math:`(N)`, sorted batch vector :math:`(N)`,
          :obj:`num_graphs` :math:`B`, total charges :math:`(B)` in e
          (default zero)
        - **output:** dipole moments :math:`(B, 3)` in e·Å and atomic
          charges :math:`(N)` in e
    """
    def forward(self, x: Tensor, pos: Tensor, z: Tensor, batch: Tensor,
                num_graphs: int, charge: Optional[Tensor] = None
                ) -> Tuple[Tensor, Tensor]:
        q = self.net.per_atom(x).squeeze(-1)
        count = scatter(torch.ones_like(q), batch, dim=0,
                        dim_size=num_graphs, reduce='sum').clamp_min(1.0)
        excess = scatter(q, batch, dim=0, dim_size=num_graphs, reduce='sum')
        if charge is not None:
            excess = excess - charge.view(-1).to(q.dtype)
        q = q - (excess / count)[batch]
        r = _relative(pos, z, batch, num_graphs)
        mu = scatter(q.unsqueeze(-1) * r, batch, dim=0, dim_size=num_graphs,
                     reduce='sum')
        return mu, q


class Polarizability(_AtomwiseHead):
    r"""A rotation-covariant polarizability tensor from invariant atom
    features and positions

    .. math::
        \boldsymbol{\alpha}_b = \sum_{i \in b} \Big( a_i\, \mathbf{I} +
        c_i\, \tilde{\mathbf{r}}_i \tilde{\mathbf{r}}_i^{\top} \Big),
        \qquad (a_i, c_i) = \mathrm{NN}(\mathbf{x}_i), \qquad
        \tilde{\mathbf{r}}_i = \mathbf{r}_i - \mathbf{r}_{c,b},

    the sum of an isotropic atomic polarizability :math:`a_i` (Å³) and an
    anisotropic part :math:`c_i` (Å) along the atom's direction from the
    centre of mass. It is the simplest symmetric rank-2 tensor that a model
    of scalar features (SchNet, DTNN) can build: it transforms as
    :math:`\mathbf{R}\boldsymbol{\alpha}\mathbf{R}^{\top}` under rotation,
    does not change under translation or permutation, and its isotropic
    part :math:`\mathrm{tr}\,\boldsymbol{\alpha}/3 = \sum_i (a_i + c_i
    |\tilde{\mathbf{r}}_i|^2/3)` is an atom-wise sum. (SchNetPack's
    tensor head needs PaiNN's vector features instead.)

    Args:
        in_channels (int): Atom feature size :math:`F`.
        hidden_channels (int, optional): Hidden size of :math:`\mathrm{NN}`.
            (default: :obj:`in_channels // 2`)

    Shapes:
        - **input:** atom features :math:`(N, F)`, positions :math:`(N, 3)`
          in Å, atomic numbers :math:`(N)`, sorted batch vector :math:`(N)`,
          :obj:`num_graphs` :math:`B`
        - **output:** polarizability tensors :math:`(B, 3, 3)` in Å³
    """
    outputs = 2

    def forward(self, x: Tensor, pos: Tensor, z: Tensor, batch: Tensor,
                num_graphs: int) -> Tensor:
        a, c = self.net.per_atom(x).unbind(-1)
        r = _relative(pos, z, batch, num_graphs)
        eye = torch.eye(3, dtype=r.dtype, device=r.device)
        atomic = a.view(-1, 1, 1) * eye + \
            c.view(-1, 1, 1) * r.unsqueeze(-1) * r.unsqueeze(-2)
        return scatter(atomic, batch, dim=0, dim_size=num_graphs,
                       reduce='sum')


class SpatialExtent(_AtomwiseHead):
    r"""The electronic spatial extent :math:`\langle R^2 \rangle` as
    SchNetPack's :obj:`ElectronicSpatialExtent`: latent weights
    :math:`w_i` times the squared distance from the centre of mass

    .. math::
        \langle R^2 \rangle_b = \sum_{i \in b} w_i\,
        |\mathbf{r}_i - \mathbf{r}_{c,b}|^2, \qquad
        w_i = \mathrm{NN}(\mathbf{x}_i),

    invariant under rotation, translation and permutation.

    Args:
        in_channels (int): Atom feature size :math:`F`.
        hidden_channels (int, optional): Hidden size of :math:`\mathrm{NN}`.
            (default: :obj:`in_channels // 2`)

    Shapes:
        - **input:** atom features :math:`(N, F)`, positions :math:`(N, 3)`
          in Å, atomic numbers :math:`(N)`, sorted batch vector :math:`(N)`,
          :obj:`num_graphs` :math:`B`
        - **output:** :math:`\langle R^2 \rangle` :math:`(B)` in Å²
    """
    def forward(self, x: Tensor, pos: Tensor, z: Tensor, batch: Tensor,
                num_graphs: int) -> Tensor:
        w = self.net.per_atom(x).squeeze(-1)
        r2 = _relative(pos, z, batch, num_graphs).pow(2).sum(-1)
        return scatter(w * r2, batch, dim=0, dim_size=num_graphs,
                       reduce='sum')


#: The heads a model can carry, by the name of what they return.
PROPERTY_HEADS = {'dipole': Dipole, 'polarizability': Polarizability,
                  'spatial_extent': SpatialExtent}
