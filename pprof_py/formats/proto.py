"""profile.proto, the format of Go's pprof and of continuous-profiling
services (Pyroscope, Parca, Cloud Profiler): reading it into our model and
writing ours (`--proto`).

The message types are declared here in Python, with protobuf's
descriptor_pb2, from the public specification
(github.com/google/pprof/proto/profile.proto); no protoc / grpcio-tools
step is needed at build time, and the runtime dependency is the
`protobuf` package only.

Reading: the sample types pick our kind (``inuse_space``/``alloc_space``
... make a heap profile, anything else a CPU-like profile whose first
``samples``/``count`` column is the value pprof shows).  Locations come
with their functions and lines, so the profile is already symbolized:
each location's frames (outermost first) become our symbols and the ELF
symbolizer is not used.  Locations without an address (or sharing one)
get distinct synthetic addresses.

Writing (`--proto`) is render/proto.py.
"""
import gzip
import zlib

from pprof_py.errors import ProfileFormatError

_MESSAGES = None

HEAP_TYPES = ["inuse_objects", "inuse_space", "alloc_objects", "alloc_space"]
HEAP_UNITS = ["count", "bytes", "count", "bytes"]
SYNTHETIC_BASE = 0x4000000000000000


def _build_messages():
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="pprof_py/profile.proto", package="perftools.profiles",
                                             syntax="proto3")

    def message(name, fields):
        msg = fdp.message_type.add(name=name)
        for number, fname, ftype, repeated, type_name in fields:
            field = msg.field.add(name=fname, number=number, type=ftype,
                                  label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL)
            if type_name:
                field.type_name = ".perftools.profiles." + type_name

    M, I64, U64, BOOL, STR = F.TYPE_MESSAGE, F.TYPE_INT64, F.TYPE_UINT64, F.TYPE_BOOL, F.TYPE_STRING
    message("Profile", [
        (1, "sample_type", M, True, "ValueType"), (2, "sample", M, True, "Sample"),
        (3, "mapping", M, True, "Mapping"), (4, "location", M, True, "Location"),
        (5, "function", M, True, "Function"), (6, "string_table", STR, True, None),
        (7, "drop_frames", I64, False, None), (8, "keep_frames", I64, False, None),
        (9, "time_nanos", I64, False, None), (10, "duration_nanos", I64, False, None),
        (11, "period_type", M, False, "ValueType"), (12, "period", I64, False, None),
        (13, "comment", I64, True, None), (14, "default_sample_type", I64, False, None),
        (15, "doc_url", I64, False, None)])
    message("ValueType", [(1, "type", I64, False, None), (2, "unit", I64, False, None)])
    message("Sample", [(1, "location_id", U64, True, None), (2, "value", I64, True, None),
                       (3, "label", M, True, "Label")])
    message("Label", [(1, "key", I64, False, None), (2, "str", I64, False, None),
                      (3, "num", I64, False, None), (4, "num_unit", I64, False, None)])
    message("Mapping", [
        (1, "id", U64, False, None), (2, "memory_start", U64, False, None),
        (3, "memory_limit", U64, False, None), (4, "file_offset", U64, False, None),
        (5, "filename", I64, False, None), (6, "build_id", I64, False, None),
        (7, "has_functions", BOOL, False, None), (8, "has_filenames", BOOL, False, None),
        (9, "has_line_numbers", BOOL, False, None), (10, "has_inline_frames", BOOL, False, None)])
    message("Location", [(1, "id", U64, False, None), (2, "mapping_id", U64, False, None),
                         (3, "address", U64, False, None), (4, "line", M, True, "Line"),
                         (5, "is_folded", BOOL, False, None)])
    message("Line", [(1, "function_id", U64, False, None), (2, "line", I64, False, None),
                     (3, "column", I64, False, None)])
    message("Function", [(1, "id", U64, False, None), (2, "name", I64, False, None),
                         (3, "system_name", I64, False, None), (4, "filename", I64, False, None),
                         (5, "start_line", I64, False, None)])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName("perftools.profiles." + name))
            for name in ("Profile", "ValueType", "Sample", "Label", "Mapping", "Location", "Line",
                         "Function")}


def messages():
    global _MESSAGES
    if _MESSAGES is None:
        try:
            _MESSAGES = _build_messages()
        except ImportError:
            raise ProfileFormatError("profile.proto", "reading and writing profile.proto needs the "
                                     "protobuf package (pip install protobuf)") from None
    return _MESSAGES


def is_gzip(data):
    return data[:2] == b"\x1f\x8b"


# A gzipped profile may expand to at most this many times its size, and
# never past MAX_GUNZIP_BYTES.  Real profiles compress 3-20x; a gzip bomb
# (10 MB expanding to 10 GiB) compresses 1000x.
GUNZIP_RATIO = 200
MIN_GUNZIP_BYTES = 256 << 20
MAX_GUNZIP_BYTES = 4 << 30


def gunzip_limit(compressed_size):
    return min(MAX_GUNZIP_BYTES, max(MIN_GUNZIP_BYTES, GUNZIP_RATIO * compressed_size))


def gunzip(data, path, limit=None):
    """Decompress gzip `data` (all members, as gzip.decompress does),
    streaming, and stop with one clear error past `limit` bytes (default
    gunzip_limit(len(data))), before allocating them."""
    limit = gunzip_limit(len(data)) if limit is None else limit
    out = []
    size = 0
    rest = data
    try:
        while rest:
            stream = zlib.decompressobj(16 + zlib.MAX_WBITS)        # one gzip member
            chunk_in = rest
            while True:
                piece = stream.decompress(chunk_in, min(limit - size + 1, 1 << 24))
                size += len(piece)
                if size > limit:
                    raise ProfileFormatError(path, f"decompressed size exceeds {limit} bytes "
                                                   f"(a gzip bomb, or not a profile)")
                out.append(piece)
                if stream.eof:
                    break
                chunk_in = stream.unconsumed_tail
                if not chunk_in and not piece:
                    raise ProfileFormatError(path, "corrupt gzip data (truncated)")
            rest = stream.unused_data.lstrip(b"\0")      # members may be padded with NULs
            if rest and not is_gzip(rest):
                break                                 # trailing garbage after a member: ignored
    except zlib.error as exc:
        raise ProfileFormatError(path, f"corrupt gzip data ({exc})") from None
    return b"".join(out)


# ---- reading ---------------------------------------------------------------

def decode(data):
    """The Profile message in `data`, or None when it is not one."""
    if not data:
        return None
    Profile = messages()["Profile"]
    msg = Profile()
    try:
        msg.ParseFromString(data)
    except Exception:       # protobuf's DecodeError and friends: not a profile.proto
        return None
    strings = msg.string_table
    if not strings or strings[0] != "" or not msg.sample_type:
        return None
    n = len(strings)
    for vt in list(msg.sample_type) + [msg.period_type]:
        if not (0 <= vt.type < n and 0 <= vt.unit < n):
            return None
    return msg


def parse_proto(msg, path):
    """Our Profile from a decoded profile.proto message."""
    from pprof_py.model import Frame, Mapping, ProfileBuilder, ValueType

    strings = list(msg.string_table)

    def s(index, what):
        if not 0 <= index < len(strings):
            raise ProfileFormatError(path, f"profile.proto: {what} names string {index}, "
                                     f"but the string table has {len(strings)} entries")
        return strings[index]

    types = [(s(vt.type, "a sample type"), s(vt.unit, "a sample unit")) for vt in msg.sample_type]
    names = [t for t, _ in types]
    if any(t in HEAP_TYPES for t in names):
        kind = "heap"
        columns = [names.index(t) if t in names else None for t in HEAP_TYPES]
        sample_types = [ValueType(t, u) for t, u in zip(HEAP_TYPES, HEAP_UNITS)]
    else:
        kind = "cpu"
        pick = 0
        for i, (t, u) in enumerate(types):
            if t in ("samples", "contentions") or u == "count":
                pick = i
                break
        columns = [pick]
        sample_types = [ValueType(*types[pick])]

    functions = {}
    for fn in msg.function:
        if fn.id == 0 or fn.id in functions:
            raise ProfileFormatError(path, f"profile.proto: function id {fn.id} is zero or repeated")
        name = s(fn.name, "a function")
        system = s(fn.system_name, "a function") or name
        functions[fn.id] = (name, system, s(fn.filename, "a function"))

    mappings = []
    mapping_ids = set()
    for m in msg.mapping:
        mapping_ids.add(m.id)
        mappings.append(Mapping(start=m.memory_start, limit=m.memory_limit, offset=m.file_offset,
                                path=s(m.filename, "a mapping"), build_id=s(m.build_id, "a mapping")))

    addresses = {}
    symbols = {}
    used = set()
    synthetic = SYNTHETIC_BASE
    for loc in msg.location:
        if loc.id == 0 or loc.id in addresses:
            raise ProfileFormatError(path, f"profile.proto: location id {loc.id} is zero or repeated")
        if loc.mapping_id and loc.mapping_id not in mapping_ids:
            raise ProfileFormatError(path, f"profile.proto: location {loc.id} names mapping "
                                     f"{loc.mapping_id}, which does not exist")
        address = loc.address
        if address == 0 or address in used:
            while synthetic in used:
                synthetic += 1
            address = synthetic
        used.add(address)
        addresses[loc.id] = address
        frames = []
        for line in loc.line:
            fn = functions.get(line.function_id)
            if fn is None:
                raise ProfileFormatError(path, f"profile.proto: location {loc.id} names function "
                                         f"{line.function_id}, which does not exist")
            name, system, filename = fn
            fileline = f"{filename}:{line.line}" if filename else "??:0"
            frames.append(Frame(name, fileline, system))
        if frames:
            symbols[address] = tuple(frames[::-1])   # proto: innermost first; ours: outermost first

    builder = ProfileBuilder(kind, sample_types)
    n_types = len(types)
    for sample in msg.sample:
        if len(sample.value) != n_types:
            raise ProfileFormatError(path, f"profile.proto: a sample has {len(sample.value)} values "
                                     f"for {n_types} sample types")
        stack = []
        for lid in sample.location_id:
            a = addresses.get(lid)
            if a is None:
                raise ProfileFormatError(path, f"profile.proto: a sample names location {lid}, "
                                         "which does not exist")
            stack.append(a)
        values = [float(sample.value[c]) if c is not None else 0.0 for c in columns]
        builder.add(stack, values)
    period = msg.period
    profile = builder.build(mappings=mappings, period=int(period),
                            comments=[s(c, "a comment") for c in msg.comment])
    # Locations without any line carry no name: they are shown by address
    # (symbolize/profiles.py).
    profile.named_by = "proto"
    for loc in profile.locations:
        loc.frames = symbols.get(loc.address)
    return profile
