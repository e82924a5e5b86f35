"""The deep tensor neural network (DTNN)."""
from typing import List, Optional

import torch
from torch import Tensor

from pyg_schnet.graph import MAX_Z
from pyg_schnet.models.potential import AtomisticModel
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
    :math:`d_{ij}` (centres every :obj:`gaussian_spacing` Å from 0 to the
    cutoff, width = spacing). Defaults follow the original code: 30 atom
    features, 60 factors, :math:`T = 3` passes sharing one set of
    interaction weights, Gaussians every 0.2 Å up to 20 Å and an output
    network of 15 tanh units. With :obj:`smooth_cutoff=True` each message is
    multiplied by the cosine cutoff, so energies stay continuous on a
    radius graph; :obj:`smooth_cutoff=False` is the original network (exact
    when the graph holds all pairs, e.g. QM9 molecules under 20 Å).

    Args:
        channels (int, optional): Atom feature size. (default: :obj:`30`)
        num_factors (int, optional): Factors of the tensor interaction.
            (default: :obj:`60`)
        num_interactions (int, optional): Passes :math:`T`.
            (default: :obj:`3`)
        shared_interactions (bool, optional): One set of interaction weights
            for all passes (the original DTNN), or one per pass.
            (default: :obj:`True`)
        gaussian_spacing (float, optional): Spacing and width of the
            Gaussians in Å. (default: :obj:`0.2`)
        cutoff (float, optional): Cutoff radius in Å. (default: :obj:`20.0`)
        smooth_cutoff (bool, optional): Multiply messages by the cosine
            cutoff. (default: :obj:`True`)
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

    Shapes:
        - **input:** as :class:`SchNet`
        - **output:** energy :math:`(B)` in eV; forces :math:`(N, 3)` in
          eV/Å and stress :math:`(B, 3, 3)` in eV/Å³ when asked
    """
    def __init__(self, channels: int = 30, num_factors: int = 60,
                 num_interactions: int = 3, shared_interactions: bool = True,
                 gaussian_spacing: float = 0.2, cutoff: float = 20.0,
                 smooth_cutoff: bool = True, hidden_channels: int = 15,
                 readout: str = 'sum', max_z: int = MAX_Z,
                 atomref: Optional[Tensor] = None, mean: float = 0.0,
                 std: float = 1.0):
        super().__init__(cutoff, max_z)
        self.channels = channels
        self.num_factors = num_factors
        self.num_interactions = num_interactions
        self.shared_interactions = shared_interactions
        self.gaussian_spacing = float(gaussian_spacing)
        self.smooth_cutoff = smooth_cutoff
        self.embedding = torch.nn.Embedding(max_z + 1, channels)
        self.rbf = GaussianRBF.from_spacing(0.0, cutoff, gaussian_spacing)
        num_blocks = 1 if shared_interactions else num_interactions
        self.interactions = torch.nn.ModuleList([
            DTNNInteraction(channels, num_factors, self.rbf.num_gaussians,
                            cutoff if smooth_cutoff else None)
            for _ in range(num_blocks)
        ])
        self.readout = Atomwise(channels, 1, hidden_channels,
                                activation='tanh', aggr=readout, mean=mean,
                                std=std)
        if atomref is not None:
            self.set_atomref(atomref)
        self._config = dict(channels=channels, num_factors=num_factors,
                            num_interactions=num_interactions,
                            shared_interactions=shared_interactions,
                            gaussian_spacing=self.gaussian_spacing,
                            cutoff=self.cutoff, smooth_cutoff=smooth_cutoff,
                            hidden_channels=hidden_channels, readout=readout,
                            max_z=max_z)
        self.reset_parameters()

    def interaction_blocks(self) -> List[torch.nn.Module]:
        r"""One block per pass; with :obj:`shared_interactions` the same
        block :math:`T` times."""
        if self.shared_interactions:
            return [self.interactions[0]] * self.num_interactions
        return list(self.interactions)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(channels={self.channels}, '
                f'num_factors={self.num_factors}, '
                f'num_interactions={self.num_interactions}, '
                f'shared_interactions={self.shared_interactions}, '
                f'gaussian_spacing={self.gaussian_spacing}, '
                f'cutoff={self.cutoff}, smooth_cutoff={self.smooth_cutoff}, '
                f"readout='{self.readout.aggr}')")
