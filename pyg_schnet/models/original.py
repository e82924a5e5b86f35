r"""Models of the original SchNet code (TensorFlow 1,
`atomistic-machine-learning/SchNet
<https://github.com/atomistic-machine-learning/SchNet>`_), read exactly and
without TensorFlow.

A model folder of that code holds ``args.npy`` (a pickled
``argparse.Namespace`` of the hyper-parameters inside a numpy object
array) and ``validation/best_model.{index,data-00000-of-00001}`` (a
TensorFlow tensor bundle: the ``.index`` is an SSTable of tensor names to
``BundleEntryProto`` records, dtype, shape, offset, size and CRC32C, into
the raw little-endian ``.data`` file). :func:`load_original_schnet` reads
both, checks every variable's name and shape against the architecture,
and returns the equal :class:`~pyg_schnet.models.SchNet` in the package's
units (eV, Å): the original models work in kcal/mol and Å, so energies,
forces, the per-atom mean and scale and the reference energies are
multiplied by :data:`KCAL_PER_MOL` eV.

Nothing in these files can run code: the pickle is read by an unpickler
that admits only ``argparse.Namespace`` (and numpy's array scaffolding,
replaced by inert stand-ins), and the bundle is parsed as bytes.
"""
import ast
import io
import math
import os
import pickle
import struct
from pathlib import Path
from typing import Any, Dict, Tuple, Union

import numpy as np
import torch
from ase import units

from pyg_schnet.io import CorruptFileError, UnsafeFileError
from pyg_schnet.models.schnet import SchNet

PathLike = Union[str, os.PathLike]

#: One kcal/mol in eV (:obj:`ase.units.kcal / ase.units.mol`).
KCAL_PER_MOL = units.kcal / units.mol

#: The original code's radial basis: centres linspace(0, cutoff,
#: ceil(cutoff / gap)) and exp(-(d - mu)^2 / gap) with gap = 0.1 Å.
ORIGINAL_GAP = 0.1

_TABLE_MAGIC = 0xdb4775248b80fb57
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64}


# -- the tensor bundle --------------------------------------------------------

def _varint(buf: bytes, pos: int) -> Tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError('truncated varint')
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7f) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError('varint too long')


def _fields(buf: bytes) -> Dict[int, list]:
    r"""The fields of a protobuf message: number → list of values (ints for
    varint and fixed fields, bytes for length-delimited ones)."""
    out: Dict[int, list] = {}
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value = struct.unpack_from('<Q', buf, pos)[0]
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value = bytes(buf[pos:pos + length])
            if len(value) != length:
                raise ValueError('truncated field')
            pos += length
        elif wire == 5:
            value = struct.unpack_from('<I', buf, pos)[0]
            pos += 4
        else:
            raise ValueError(f'unsupported protobuf wire type {wire}')
        out.setdefault(number, []).append(value)
    return out


def _block(data: bytes, offset: int, size: int) -> bytes:
    if offset + size + 5 > len(data):
        raise ValueError('a block lies beyond the end of the file')
    if data[offset + size] != 0:
        raise ValueError(f'compressed table blocks (type '
                         f'{data[offset + size]}) are not supported')
    return data[offset:offset + size]


def _block_entries(block: bytes):
    if len(block) < 4:
        raise ValueError('block too short')
    restarts = struct.unpack_from('<I', block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * restarts
    if end < 0:
        raise ValueError('bad restart array')
    pos, key = 0, b''
    while pos < end:
        shared, pos = _varint(block, pos)
        fresh, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        key = key[:shared] + block[pos:pos + fresh]
        pos += fresh
        yield key, block[pos:pos + length]
        pos += length


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82f63b78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = None


def crc32c(data: bytes) -> int:
    r"""CRC-32C (Castagnoli) of :obj:`data`, as TensorFlow checks its
    tensors (pure Python; about 1 s per 5 MB)."""
    global _CRC_TABLE
    if _CRC_TABLE is None:
        _CRC_TABLE = _crc32c_table()
    table = _CRC_TABLE
    crc = 0xffffffff
    for byte in data:
        crc = table[(crc ^ byte) & 0xff] ^ (crc >> 8)
    return crc ^ 0xffffffff


def _masked(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xffffffff) + 0xa282ead8) & \
        0xffffffff


def read_tensor_bundle(prefix: PathLike,
                       check_crc: bool = True) -> Dict[str, np.ndarray]:
    r"""The tensors of a TensorFlow checkpoint (tensor bundle)
    :obj:`prefix` (``PREFIX.index`` and ``PREFIX.data-00000-of-00001``),
    by name, without TensorFlow.

    Raises:
        FileNotFoundError: if a file is missing.
        CorruptFileError: naming the file and the problem, for anything
            that is not a single-shard little-endian bundle of float and
            integer tensors, or a tensor whose CRC32C does not match.
    """
    prefix = Path(prefix)
    index_path = prefix.with_name(prefix.name + '.index')
    data_path = prefix.with_name(prefix.name + '.data-00000-of-00001')
    for path in (index_path, data_path):
        if not path.is_file():
            raise FileNotFoundError(f'no TensorFlow checkpoint file {path}')
    index = index_path.read_bytes()
    try:
        if len(index) < 48 or struct.unpack_from(
                '<Q', index, len(index) - 8)[0] != _TABLE_MAGIC:
            raise ValueError('not an SSTable (bad magic number)')
        footer = index[-48:]
        _, pos = _varint(footer, 0)
        _, pos = _varint(footer, pos)
        index_offset, pos = _varint(footer, pos)
        index_size, pos = _varint(footer, pos)
        entries = {}
        for _, handle in _block_entries(_block(index, index_offset,
                                               index_size)):
            offset, p = _varint(handle, 0)
            size, _ = _varint(handle, p)
            for key, value in _block_entries(_block(index, offset, size)):
                entries[key.decode('utf-8')] = value
    except (ValueError, struct.error, UnicodeDecodeError) as e:
        raise CorruptFileError(f'{index_path} is not a TensorFlow '
                               f'checkpoint index: {e}') from None
    header = _fields(entries.pop('', b''))
    if header.get(1, [1])[0] != 1:
        raise CorruptFileError(f'{index_path}: checkpoints of '
                               f'{header[1][0]} shards are not supported')
    if header.get(2, [0])[0] != 0:
        raise CorruptFileError(f'{index_path}: big-endian checkpoints are '
                               f'not supported')
    data = data_path.read_bytes()
    tensors = {}
    for name, value in sorted(entries.items()):
        try:
            entry = _fields(value)
            if 7 in entry:
                raise ValueError('sliced (partitioned) variables are not '
                                 'supported')
            dtype = _DTYPES.get(entry.get(1, [0])[0])
            if dtype is None:
                raise ValueError(f'dtype {entry.get(1, [0])[0]} is not a '
                                 f'float or integer type')
            shape = [_fields(d).get(1, [0])[0]
                     for d in _fields(entry.get(2, [b''])[0]).get(2, [])]
            if any(s >= 2**63 for s in shape):  # negative: unknown size
                raise ValueError('unknown dimensions')
            offset = entry.get(4, [0])[0]
            size = entry.get(5, [0])[0]
            itemsize = np.dtype(dtype).itemsize
            if size != itemsize * math.prod(shape) or \
                    offset + size > len(data):
                raise ValueError(f'{size} bytes at offset {offset} do not '
                                 f'hold a tensor of shape {shape}')
            raw = data[offset:offset + size]
            if check_crc and 6 in entry and \
                    _masked(crc32c(raw)) != entry[6][0]:
                raise ValueError('its CRC32C does not match (damaged data '
                                 'file)')
        except (ValueError, IndexError, struct.error) as e:
            raise CorruptFileError(f'{prefix}: variable {name!r}: {e}') \
                from None
        tensors[name] = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder(
            '<')).reshape(shape).copy()
    return tensors


# -- args.npy -----------------------------------------------------------------

class _Namespace:
    r"""Stands in for ``argparse.Namespace``: it only collects the
    attributes the pickle sets."""
    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise pickle.UnpicklingError('a Namespace state must be a dict')
        self.values = dict(state)


class _ArrayStub:
    r"""Stands in for the numpy object array around the Namespace."""
    def __setstate__(self, state):
        self.state = state


def _reconstruct(cls, shape, dtype_code):
    return _ArrayStub()


class _DtypeStub:
    r"""Stands in for ``numpy.dtype``."""
    def __init__(self, name, align=False, copy=False):
        self.name = name

    def __setstate__(self, state):
        self.state = state


def _encode(text, encoding='latin1'):
    if not isinstance(text, str) or encoding != 'latin1':
        raise pickle.UnpicklingError('unexpected _codecs.encode call')
    return text.encode('latin1')


class _ArgsUnpickler(pickle.Unpickler):
    r"""Admits ``argparse.Namespace`` and nothing else: numpy's array
    scaffolding of an ``.npy`` object array is replaced by inert
    stand-ins, and every other global is refused."""
    _ALLOWED = {('argparse', 'Namespace'): _Namespace,
                ('numpy.core.multiarray', '_reconstruct'): _reconstruct,
                ('numpy._core.multiarray', '_reconstruct'): _reconstruct,
                ('numpy', 'ndarray'): object,
                ('numpy', 'dtype'): _DtypeStub,
                ('_codecs', 'encode'): _encode}

    def find_class(self, module, name):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise UnsafeFileError(
                f'refused to load {module}.{name}: an args.npy holds an '
                f'argparse.Namespace and nothing else') from None


def read_original_args(path: PathLike) -> Dict[str, Any]:
    r"""The hyper-parameters in an ``args.npy`` of the original SchNet code
    (a pickled ``argparse.Namespace`` in a numpy object array), as a dict,
    without running any code from the file.

    Raises:
        FileNotFoundError: if there is no such file.
        UnsafeFileError: if the pickle names anything but the Namespace
            and numpy's array scaffolding.
        CorruptFileError: if it is not such a file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'no args.npy at {path}')
    blob = path.read_bytes()
    try:
        if blob[:6] != b'\x93NUMPY':
            raise ValueError('not a .npy file')
        major = blob[6]
        if major == 1:
            length = struct.unpack_from('<H', blob, 8)[0]
            start = 10
        else:
            length = struct.unpack_from('<I', blob, 8)[0]
            start = 12
        header = ast.literal_eval(blob[start:start + length].decode(
            'latin1'))
        if not isinstance(header, dict) or header.get('descr') != '|O':
            raise ValueError('not an object array')
        stub = _ArgsUnpickler(io.BytesIO(blob[start + length:])).load()
        values = stub.state[4] if isinstance(stub, _ArrayStub) else None
        if isinstance(values, list) and len(values) == 1:
            values = values[0]
        if not isinstance(values, _Namespace):
            raise ValueError('it does not hold an argparse.Namespace')
    except UnsafeFileError as e:
        raise UnsafeFileError(f'{path}: {e}') from None
    except Exception as e:  # any malformed pickle or header
        raise CorruptFileError(f'{path} is not an args.npy of the original '
                               f'SchNet code: {e}') from None
    return values.values


# -- the model ----------------------------------------------------------------

def original_schnet(args: Dict[str, Any], max_z: int = 99) -> SchNet:
    r"""An empty :class:`SchNet` with the architecture of the original
    SchNet code for its hyper-parameters :obj:`args` (``basis``,
    ``filters``, ``interactions``, ``cutoff``): Gaussians at the centres
    ``linspace(0, cutoff, ceil(cutoff / gap))`` (gap
    :data:`ORIGINAL_GAP`) with :math:`\exp(-(d - \mu)^2/\mathrm{gap})`,
    ssp after both filter layers with its threshold of 14, no envelope,
    sum readout."""
    for key in ('basis', 'filters', 'interactions', 'cutoff'):
        if key not in args:
            raise CorruptFileError(f"args.npy has no '{key}'")
    if args.get('shared_interactions'):
        raise CorruptFileError('shared_interactions=True models are not '
                               'supported (these C20 models do not share)')
    if args.get('intensive'):
        raise CorruptFileError('intensive (mean-readout) models are not '
                               'supported')
    if args.get('filter_pool_mode', 'sum') != 'sum':
        raise CorruptFileError(f"filter_pool_mode="
                               f"{args.get('filter_pool_mode')!r} is not "
                               f"supported (only 'sum')")
    cutoff = float(args['cutoff'])
    gap = float(args.get('gap', ORIGINAL_GAP))
    return SchNet(hidden_channels=int(args['basis']),
                  num_filters=int(args['filters']),
                  num_interactions=int(args['interactions']),
                  num_gaussians=int(math.ceil(cutoff / gap)), cutoff=cutoff,
                  gaussian_width=(gap / 2)**0.5, filter_activations=2,
                  envelope='none', ssp_threshold=14.0, max_z=max_z)


def _mapping(model: SchNet) -> Dict[str, Tuple[torch.Tensor, bool]]:
    r"""Checkpoint name → (the parameter or buffer it fills, whether the
    stored [fan_in, fan_out] matrix is transposed into it)."""
    out = {'atom_embedding/embeddings/W': (model.embedding.weight, False),
           'Dense/W': (model.readout.lin1.weight, True),
           'Dense/b': (model.readout.lin1.bias, False),
           'Dense_1/W': (model.readout.lin2.weight, True),
           'Dense_1/b': (model.readout.lin2.bias, False)}
    for t, block in enumerate(model.interactions):
        net = block.conv.filter_network
        for name, tensor, transposed in (
                ('SchNetFilter/Dense/W', net[0].weight, True),
                ('SchNetFilter/Dense/b', net[0].bias, False),
                ('SchNetFilter/Dense_1/W', net[2].weight, True),
                ('SchNetFilter/Dense_1/b', net[2].bias, False),
                ('CFConv/in2fac/W', block.in2f.weight, True),
                ('CFConv/fac2out/W', block.f2out.weight, True),
                ('CFConv/fac2out/b', block.f2out.bias, False),
                ('Dense/W', block.dense.weight, True),
                ('Dense/b', block.dense.bias, False)):
            out[f'interaction_{t}/{name}'] = (tensor, transposed)
    return out


def load_original_schnet(model_dir: PathLike,
                         dtype: torch.dtype = torch.float64,
                         check_crc: bool = True
                         ) -> Tuple[SchNet, Dict[str, Any]]:
    r"""The model of a folder of the original SchNet code (``args.npy`` and
    ``validation/best_model.*``) as a :class:`SchNet` in eV and Å, in
    evaluation mode and :obj:`dtype`.

    The original works in kcal/mol and Å: every energy-valued parameter
    (``mean_per_atom``, ``std_per_atom``, the ``atomref`` embedding) is
    multiplied by :data:`KCAL_PER_MOL`, so energies come out in eV and
    forces in eV/Å; distances need no conversion. The per-atom mean is
    added to the (float64) reference energies rather than kept in the
    readout: the same function, and float32 models sum their energies
    without losing the meV the original float32 code loses. Dense weights
    are stored as :math:`[n_\mathrm{in}, n_\mathrm{out}]` and transposed into
    :class:`torch.nn.Linear`. The float32 checkpoint values are converted
    to :obj:`dtype` exactly.

    Returns:
        :obj:`(model, info)`: :obj:`info` holds the :obj:`args`, the
        folder and the unit conversion.

    Raises:
        FileNotFoundError: for a missing file.
        CorruptFileError: naming the variable, for a checkpoint whose
            variables are missing, extra or of other shapes than the
            architecture of its args.
        UnsafeFileError: for an args.npy that would run code.
    """
    folder = Path(model_dir)
    args = read_original_args(folder / 'args.npy')
    tensors = read_tensor_bundle(folder / 'validation' / 'best_model',
                                 check_crc)
    names = {name[:-2] if name.endswith(':0') else name: value
             for name, value in tensors.items()}
    embedding = names.get('atom_embedding/embeddings/W')
    if embedding is None or embedding.ndim != 2:
        raise CorruptFileError(f"{folder}: variable "
                               f"'atom_embedding/embeddings/W' is missing "
                               f'or not a matrix')
    # float64 while filling: the mean (-23856 kcal/mol per atom in the C20
    # models) converted to eV must not be rounded to float32 first.
    model = original_schnet(args, max_z=embedding.shape[0] - 1).double()
    expected = _mapping(model)
    scalars = {'mean_per_atom': (1, ), 'std_per_atom': (1, ),
               'atomref/embeddings/W': (embedding.shape[0], 1)}
    unknown = sorted(set(names) - set(expected) - set(scalars))
    missing = sorted((set(expected) | set(scalars)) - set(names))
    if unknown:
        raise CorruptFileError(f'{folder}: variable {unknown[0]!r} does not '
                               f'belong to the architecture of its args.npy '
                               f'({len(unknown)} unexpected in all)')
    if missing:
        raise CorruptFileError(f'{folder}: variable {missing[0]!r} is '
                               f'missing ({len(missing)} missing in all)')
    with torch.no_grad():
        for name, (target, transposed) in expected.items():
            value = torch.from_numpy(names[name].astype(np.float64))
            if transposed:
                value = value.T
            if tuple(value.shape) != tuple(target.shape):
                raise CorruptFileError(
                    f'{folder}: variable {name!r} has shape '
                    f'{list(names[name].shape)}, the architecture needs '
                    f'{list(target.T.shape if transposed else target.shape)}')
            target.copy_(value)
        for name, shape in scalars.items():
            if tuple(names[name].shape) != shape:
                raise CorruptFileError(
                    f'{folder}: variable {name!r} has shape '
                    f'{list(names[name].shape)}, expected {list(shape)}')
        model.readout.std.fill_(float(names['std_per_atom'][0]) *
                                KCAL_PER_MOL)
    # y_i = std NN(x_i) + mean + atomref[Z_i]: the mean (about -1034 eV per
    # atom) goes into the float64 reference energies, so that a float32
    # model sums only the small learned part in float32 (the original
    # float32 code loses ~0.05 kcal/mol there); the same numbers in float64.
    atomref = names['atomref/embeddings/W'].astype(np.float64).reshape(-1)
    atomref = atomref + float(names['mean_per_atom'][0])
    model.set_atomref(torch.from_numpy(atomref * KCAL_PER_MOL))
    model = model.to(dtype).eval()
    return model, {'args': args, 'folder': str(folder),
                   'energy_unit_of_the_original': 'kcal/mol',
                   'eV_per_original_unit': KCAL_PER_MOL}
