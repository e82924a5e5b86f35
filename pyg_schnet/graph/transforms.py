"""PyG transforms that attach graphs to atomistic :class:`Data` objects."""
import torch
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from pyg_schnet.graph.build import build_graph
from pyg_schnet.graph.validation import check_structure


class PeriodicRadiusGraph(BaseTransform):
    r"""Creates edges between atoms closer than :obj:`cutoff` (Å), through
    periodic boundaries where :obj:`data.pbc` says so (in the shape of
    :class:`torch_geometric.transforms.RadiusGraph`).

    Sets :obj:`data.edge_index` :obj:`[2, E]` (row 0 neighbour :math:`j`,
    row 1 centre :math:`i`), :obj:`data.cell_offsets` :obj:`[E, 3]` (integer
    image shifts, zeros for molecules, so molecules and crystals batch
    together) and :obj:`data.graph_cutoff` :obj:`[1]` (the cutoff in Å; a
    model with a larger cutoff refuses the graph rather than silently miss
    neighbours). Edge vectors are
    :math:`\mathbf{r}_{ij} = \mathbf{p}_j - \mathbf{p}_i +
    \mathbf{S}_{ij}\mathbf{C}`.

    Args:
        cutoff (float): Cutoff radius in Å.
    """
    def __init__(self, cutoff: float):
        if not cutoff > 0:
            raise ValueError(f"'cutoff' must be positive (got {cutoff} Å)")
        self.cutoff = float(cutoff)

    def forward(self, data: Data) -> Data:
        check_structure(data.z, data.pos, data.get('batch'))
        edge_index, offsets = build_graph(
            data.pos, self.cutoff, data.get('batch'), data.get('cell'),
            data.get('pbc'), num_graphs=getattr(data, 'num_graphs', None))
        if offsets is None:
            offsets = torch.zeros((edge_index.size(1), 3), dtype=torch.long,
                                  device=edge_index.device)
        data.edge_index = edge_index
        data.cell_offsets = offsets
        data.graph_cutoff = torch.tensor([self.cutoff],
                                         dtype=data.pos.dtype,
                                         device=data.pos.device)
        return data

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(cutoff={self.cutoff})'
