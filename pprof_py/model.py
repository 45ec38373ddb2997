"""The one profile model every parser produces and every renderer reads.

It has the shape of profile.proto (github.com/google/pprof/proto/profile.proto):

* ``sample_types``: what each column of ``Profile.values`` measures
  (e.g. ``samples/count``, or heap's ``alloc_objects``, ``alloc_space``,
  ``inuse_objects``, ``inuse_space``).
* samples, kept array-shaped: ``values`` is an (n_samples, n_types) float64
  array (heap profiles un-sample to fractional counts) and the stacks are in
  CSR form: sample ``i`` has the location indices
  ``stack_locations[stack_starts[i]:stack_starts[i+1]]``, leaf first.
* ``locations``: one per distinct (adjusted) address.  Non-leaf frames of
  gperftools profiles hold return addresses; parsers store ``address - 1`` for
  them, as pprof does, so a location is a "call site" address.
* ``frames`` of a location: outermost first, each a
  ``Frame(function, file_line, full_name)``; more than one frame means
  inlining.  Inputs that name their own frames fill them when parsed
  (profile.proto); the others get them from symbolization
  (pprof_py/report.py fills every location of the profiles it reads).
* ``names`` of a location: the full names an input gives for it without
  file or line (``pprof --raw``'s symbol section, folded stacks), outermost
  first; symbolization turns them into frames as pprof does.
* ``mappings``: the executable mappings read from the profile's memory map.

Identical stacks are merged by the parsers, so a profile with 200,000 samples
of 2,000 distinct stacks holds 2,000 rows.

``values``, ``stack_starts`` and ``stack_locations`` read as numpy arrays.  A
parser may give them as plain lists instead (``values`` as a list of rows):
the CPU reader does for profiles of ordinary size, so that `pprof --text`
with a warm symbol cache never imports numpy (see pprof_py/lazynp.py); they
become arrays the first time one of them is read.  The pipeline reads them
through ``column()``, ``starts()`` and ``location_indices()``, which give
lists either way.
"""
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, List, NamedTuple, Optional, Tuple

from pprof_py.lazynp import np


class ProfileKind(str, Enum):
    """What a profile measures.  A str subclass, so ``kind == "cpu"`` reads
    naturally; str() and format() give the bare value ("cpu")."""

    CPU = "cpu"                 # gperftools CPU profile, proto CPU-like profiles
    HEAP = "heap"               # heap profiles and heap-checker leak profiles
    GROWTH = "growth"           # heap growth stacks
    CONTENTION = "contention"   # lock contention
    FOLDED = "folded"           # folded stacks of other profilers (counts)

    def __str__(self):
        return self.value

    __format__ = str.__format__

    @property
    def is_heap(self):
        return self in (ProfileKind.HEAP, ProfileKind.GROWTH)

    @property
    def description(self):
        return {"cpu": "a CPU profile", "heap": "a heap profile", "growth": "a heap growth profile",
                "contention": "a lock contention profile", "folded": "folded stacks"}[self.value]


@dataclass(frozen=True)
class ValueType:
    type: str
    unit: str


@dataclass
class Mapping:
    start: int
    limit: int
    offset: int          # file offset of `start`
    path: str
    build_id: str = ""


# How an unknown source position is spelled.  pprof prints addr2line's
# "??:0" for frames it symbolized without line information, and "?" for the
# frames of a symbolized (`--raw`) profile, whose file it never knew; both
# spellings appear in its reports, so both stay, named once here.
UNKNOWN_LINE = "??:0"
NO_LINE = "?"
UNKNOWN_FUNCTION = "??"


class Frame(NamedTuple):
    """One (possibly inlined) function at a location, in pprof's terms:
    ``function`` is the short display name, ``file_line`` is "path:line" (or
    UNKNOWN_LINE / NO_LINE), ``full_name`` the name before shortening.  A
    tuple, so hot loops can unpack it."""

    function: str
    file_line: str
    full_name: str


@dataclass
class Location:
    address: int
    frames: Optional[Tuple[Frame, ...]] = None   # None until symbolized
    names: Optional[Tuple[str, ...]] = None      # full names given by the input


class LocationTable(Sequence):
    """A profile's locations as columns: ``addresses``, ``frames`` and
    ``names`` lists (the last two None until something is set).  The CPU
    reader gives big profiles this instead of a list of Location: 700,000
    Location objects took half a second to make, and the pipeline only
    reads their addresses (report.location_addresses) and sets their
    frames in one step (set_frames).  Indexing or iterating gives a
    LocationRow, which reads and writes the columns like a Location."""

    def __init__(self, addresses):
        self.addresses = addresses
        self.frames = None
        self.names = None

    def __len__(self):
        return len(self.addresses)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self.addresses)
        if not 0 <= i < len(self.addresses):
            raise IndexError("location index out of range")
        return LocationRow(self, i)

    def set_frames(self, frames):
        """Every location's frames at once (a list as long as the table)."""
        self.frames = list(frames)

    def _column(self, name):
        column = getattr(self, name)
        if column is None:
            column = [None] * len(self.addresses)
            setattr(self, name, column)
        return column


class LocationRow:
    """Location i of a LocationTable (see there)."""

    __slots__ = ("_table", "_index")

    def __init__(self, table, index):
        self._table = table
        self._index = index

    @property
    def address(self):
        return self._table.addresses[self._index]

    @property
    def frames(self):
        column = self._table.frames
        return None if column is None else column[self._index]

    @frames.setter
    def frames(self, value):
        self._table._column("frames")[self._index] = value

    @property
    def names(self):
        column = self._table.names
        return None if column is None else column[self._index]

    @names.setter
    def names(self, value):
        self._table._column("names")[self._index] = value

    def __eq__(self, other):
        if not isinstance(other, (Location, LocationRow)):
            return NotImplemented
        return (self.address, self.frames, self.names) == (other.address, other.frames, other.names)

    def __repr__(self):
        return f"Location(address={self.address}, frames={self.frames!r}, names={self.names!r})"


def location_addresses(profile):
    """The address of every location of `profile`, as a list."""
    locations = profile.locations
    if isinstance(locations, LocationTable):
        return list(locations.addresses)
    return [loc.address for loc in locations]


@dataclass
class Profile:
    kind: ProfileKind
    sample_types: List[ValueType]
    values: Any                         # float64 (n_samples, n_types)
    stack_starts: Any                   # int64 (n_samples + 1,)
    stack_locations: Any                # int64, location indices, leaf first
    locations: List[Location]
    mappings: List[Mapping] = field(default_factory=list)
    period: int = 0                     # CPU: microseconds per sample
    address_width: int = 16             # hex digits pprof prints (8 for 32-bit)
    comments: List[str] = field(default_factory=list)
    # Raw per-stack records for `--text --stacks` of heap profiles, in file
    # order: (inuse_objects, inuse_bytes, alloc_objects, alloc_bytes, sample row).
    heap_records: Optional[list] = None
    # Where the names come from: "elf" (symbolize from the memory map),
    # "raw" (`pprof --raw`: Location.names), "folded" (Location.names, shown
    # as written) or "proto" (Location.frames filled by the parser).
    named_by: str = "elf"
    # The program a symbolized (`--raw`) profile names in its header.
    program_name: Optional[str] = None
    # Set by the CPU reader when the file ends early (crash, kill):
    # (byte offset, whether the memory map is missing); pprof still reports it.
    truncated: Optional[Tuple[int, bool]] = None

    def __post_init__(self):
        self.kind = ProfileKind(self.kind)

    @property
    def n_samples(self):
        return len(self._stack_starts) - 1

    def stack(self, i):
        return self.stack_locations[self.stack_starts[i]:self.stack_starts[i + 1]]

    def stacks(self):
        """Yield each sample's location indices (leaf first) as a tuple."""
        starts = self.starts()
        locs = self.location_indices()
        for i in range(len(starts) - 1):
            yield tuple(locs[starts[i]:starts[i + 1]])

    # ---- the sample arrays as lists (no numpy needed) --------------------
    def column(self, j):
        """Column j of `values` as a list of floats."""
        values = self._values
        if isinstance(values, list):
            return [float(row[j]) for row in values]
        return values[:, j].tolist()

    def any_value(self):
        """Whether any sample has a non-zero value."""
        values = self._values
        if isinstance(values, list):
            return any(any(row) for row in values)
        return bool(values.any())

    def starts(self):
        """`stack_starts` as a list."""
        starts = self._stack_starts
        return starts if isinstance(starts, list) else starts.tolist()

    def location_indices(self):
        """`stack_locations` as a list."""
        locs = self._stack_locations
        return locs if isinstance(locs, list) else locs.tolist()

    def sample_index(self, type_name):
        for i, vt in enumerate(self.sample_types):
            if vt.type == type_name:
                return i
        raise KeyError(type_name)


def _array_property(name, dtype, rows=False):
    """A Profile attribute that holds what the parser gave (list or numpy
    array) and reads as a numpy array (converted once, on first read)."""
    private = "_" + name

    def get(self):
        value = getattr(self, private)
        if isinstance(value, list):
            array = np.array(value, dtype=dtype)
            if rows:
                array = array.reshape(len(value), len(self.sample_types))
            value = array
            setattr(self, private, value)
        return value

    def set(self, value):
        setattr(self, private, value)

    return property(get, set)


# After @dataclass made __init__ (which assigns these names, so through the
# properties' setters).
Profile.values = _array_property("values", "float64", rows=True)
Profile.stack_starts = _array_property("stack_starts", "int64")
Profile.stack_locations = _array_property("stack_locations", "int64")


class ProfileBuilder:
    """Accumulates stacks of addresses into a Profile, merging identical stacks
    and interning addresses into locations."""

    def __init__(self, kind, sample_types, address_width=16):
        self.kind = ProfileKind(kind)
        self.sample_types = sample_types
        self.address_width = address_width
        self._loc_index = {}
        self._addresses = []
        self._stack_row = {}
        self._stacks = []
        self._values = []

    def location(self, address):
        idx = self._loc_index.get(address)
        if idx is None:
            idx = self._loc_index[address] = len(self._addresses)
            self._addresses.append(address)
        return idx

    def add(self, addresses, values):
        """Add one sample; `addresses` leaf first, already adjusted."""
        key = tuple(self.location(a) for a in addresses)
        row = self._stack_row.get(key)
        if row is None:
            self._stack_row[key] = len(self._stacks)
            self._stacks.append(key)
            self._values.append(list(values))
            return len(self._stacks) - 1
        acc = self._values[row]
        for j, v in enumerate(values):
            acc[j] += v
        return row

    def build(self, **kwargs):
        starts = np.zeros(len(self._stacks) + 1, dtype=np.int64)
        if self._stacks:
            np.cumsum([len(s) for s in self._stacks], out=starts[1:])
        flat = np.fromiter((i for s in self._stacks for i in s), dtype=np.int64,
                           count=int(starts[-1]))
        values = np.array(self._values, dtype=np.float64).reshape(len(self._stacks), len(self.sample_types))
        locations = [Location(a) for a in self._addresses]
        return Profile(kind=self.kind, sample_types=self.sample_types, values=values,
                       stack_starts=starts, stack_locations=flat, locations=locations,
                       address_width=self.address_width, **kwargs)
