"""The totals of a report on a big profile, computed on arrays.

The general pipeline (report.analyze) turns every stack into a tuple of
addresses, filters those (filter.py) and reduces them to tuples of keys
(graph.py): a dozen Python object operations per frame.  On a profile of
200,000 stacks and 4,000,000 frames that is seconds of memory-bound work
(each frame's int and key objects are scattered over the heap), while the
profile already holds its stacks as arrays (model.Profile: stack_starts,
stack_locations).  For the common case, one profile with no base and no
focus/ignore/hide/show/show_from, this module computes what the report
needs first, the total, pprof's notes about removed frames, and the flat
and cumulative value of every key, from those arrays directly:

1. frames: the address of every frame, stack after stack (a gather);
2. pprof's RemoveUninterestingFrames on arrays: while every stack's second
   frame is the same address, move each stack's "second frame" position
   on (and over a frame one byte below the leaf, as pprof does); then
   drop the frames of skipped functions (filter.remove_uninteresting_frames
   holds the rules; the notes it would print are made here the same way);
3. keys: each location's keys at the report granularity (graph's rules,
   made once per location), expanded frame by frame;
4. a key counts once per stack towards the cumulative value (unique
   (stack, key) pairs, by sorting), the first key of a stack gets the flat
   value; the empty key never counts (as graph.reduce_profile).

The dictionaries come out in the order graph.flat_and_cumulative gives
them (keys by first appearance), so no renderer can tell the difference;
tests/pipeline/test_bigprofile.py checks both paths agree.  Values are
added as float64, exact because the path is taken only for whole-number
values whose total stays below 2^53.
"""
from pprof_py import filter as filters
from pprof_py import graph
from pprof_py.lazynp import np

# From this many stacks on the arrays pay (below it the general path is
# quick, and a small profile's run does not import numpy).
MIN_STACKS = 20000
_EXACT_SUM = 2 ** 53


def applies(inputs, options, profile):
    """Whether the array path computes this report's totals."""
    return (len(inputs.profiles) == 1 and inputs.base is None and profile.named_by == "elf"
            and not (options.focus or options.ignore or options.hide or options.show or options.show_from)
            and profile.n_samples >= MIN_STACKS)


def totals(inputs, options, column, notes):
    """(total, flat, cum) of the report, or None when the values are not
    whole numbers below 2^53 (then the general path computes them).
    Appends pprof's frame-removal notes to `notes` like the general path.

    Memory matters as much as time here (a big profile's frames fill
    arrays of millions): indices are int32 where they fit, temporaries are
    dropped as soon as used, and a step that changes nothing (no frame
    removed) makes no copy."""
    profile = inputs.profiles[0]
    values = profile.values[:, column]
    if len(values) and (not np.all(np.floor(values) == values) or float(np.abs(values).sum()) >= _EXACT_SUM):
        return None
    locations = profile.stack_locations
    if len(locations) >= 2 ** 31 or len(inputs.addresses[0]) >= 2 ** 31:
        return None
    try:
        location_addresses = np.array(inputs.addresses[0], dtype=np.uint64)
    except OverflowError:           # an address outside 0..2^64-1 (damaged input)
        return None
    starts = profile.stack_starts
    lengths = starts[1:] - starts[:-1]
    stack_first = starts[:-1]
    total = float(values.sum())

    # Frames kept: each stack's first, and those from its second-frame
    # position on, but not those of functions pprof skips.
    second = _second_frame_positions(location_addresses, locations, stack_first, lengths, inputs, options, notes)
    keep = None
    if len(second) and int(second.max()) > 1:
        within = np.arange(len(locations), dtype=np.int32)
        within -= np.repeat(stack_first.astype(np.int32), lengths)
        keep = within == 0
        keep |= within >= np.repeat(second.astype(np.int32), lengths)
        del within
    dropped = filters.dropped_addresses(inputs.symbols, inputs.kind, options.no_auto_signal_frames)
    if dropped:
        dropped_location = np.isin(location_addresses, np.array(sorted(dropped), dtype=np.uint64))
        if dropped_location.any():
            kept = ~dropped_location[locations]
            keep = kept if keep is None else keep & kept
    stack_of_frame = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)
    if keep is not None:
        locations, stack_of_frame = locations[keep], stack_of_frame[keep]
        del keep

    # Every kept frame's keys, in order (a location has one key per frame
    # of its symbol: more than one where code was inlined).
    names, key_starts, key_ids = _location_keys(inputs, options)
    first_key = key_starts[:-1][locations]
    counts = (key_starts[1:] - key_starts[:-1]).astype(np.int32)[locations]
    if not len(counts) or int(counts.min()) == int(counts.max()) == 1:      # no inlined frames
        key_of, stack_of = key_ids[first_key], stack_of_frame
    else:
        # key index of each expanded key: its frame's first plus its rank
        first_key -= np.cumsum(counts, dtype=np.int64) - counts
        index = np.repeat(first_key, counts)
        del first_key
        index += np.arange(len(index), dtype=np.int64)
        key_of = key_ids[index]
        del index
        stack_of = np.repeat(stack_of_frame, counts)
    del counts, stack_of_frame, locations
    if "" in names:
        nonempty = key_of != names.index("")
        key_of, stack_of = key_of[nonempty], stack_of[nonempty]
    return total, *_flat_and_cumulative(names, key_of, stack_of, values)


def _second_frame_positions(location_addresses, locations, stack_first, lengths, inputs, options, notes):
    """Per stack, the position (within it) of its "second frame" after
    pprof removed the frames common to all stacks (1: none removed)."""
    second = np.ones(len(lengths), dtype=np.int64)
    if inputs.kind != "cpu" or not len(lengths):
        return second

    def address_at(positions):
        return location_addresses[locations[positions]]
    leaf = address_at(stack_first)
    while True:
        if np.any(lengths - second < 1):      # a stack with no frame there
            break
        at = address_at(stack_first + second)
        address = int(at[0])
        if not address or np.any(at != at[0]):   # pprof treats address 0 as "not the same" too
            break
        if not filters.note_common_second_frame(address, inputs.symbols, notes, options.no_auto_signal_frames):
            break
        second += 1
        longer = lengths - second > 1
        below_leaf = np.zeros(len(lengths), dtype=bool)
        idx = np.flatnonzero(longer)
        below_leaf[idx] = (leaf[idx] != 0) & (address_at(stack_first[idx] + second[idx]) == leaf[idx] - 1)
        second += below_leaf
    return second


def _location_keys(inputs, options):
    """The keys of every location at the report granularity: (key names,
    CSR starts per location, key ids).  Locations whose keys are one shared
    tuple (graph.shared_keys) share their ids."""
    symbols = inputs.symbols
    addresses = inputs.addresses[0]
    key_id = {}
    starts = [0]
    ids = []
    made_for = {}           # id(keys) -> (keys, their ids); keys kept so ids are not reused
    for keys in graph.shared_keys(((a, symbols.get(a)) for a in addresses), symbols,
                                  options.granularity, inputs.width, options.show_addresses):
        made = made_for.get(id(keys))
        if made is None:
            made = []
            for k in keys:
                i = key_id.get(k)
                if i is None:
                    i = key_id[k] = len(key_id)
                made.append(i)
            made_for[id(keys)] = (keys, made)
        else:
            made = made[1]
        ids.extend(made)
        starts.append(len(ids))
    names = list(key_id)            # (ids were given in insertion order)
    return names, np.array(starts, dtype=np.int64), np.array(ids, dtype=np.int32)


def _flat_and_cumulative(names, key_of, stack_of, values):
    """{key: flat}, {key: cum} with keys in order of first appearance."""
    nkeys = max(len(names), 1)
    # Cumulative: each (stack, key) pair once (sorted, then deduplicated).
    pairs = stack_of.astype(np.int64)
    pairs *= nkeys
    pairs += key_of
    pairs.sort()
    if len(pairs) > 1:
        distinct = np.empty(len(pairs), dtype=bool)
        distinct[0] = True
        np.not_equal(pairs[1:], pairs[:-1], out=distinct[1:])
        pairs = pairs[distinct]
        del distinct
    pair_keys = pairs % nkeys
    pairs //= nkeys                         # now the stack of each pair
    cum_values = np.bincount(pair_keys, weights=values[pairs], minlength=nkeys)
    del pairs, pair_keys
    first_seen = np.full(nkeys, len(key_of), dtype=np.int64)
    np.minimum.at(first_seen, key_of, np.arange(len(key_of), dtype=np.int64))
    # Flat: the first key of every stack that has one.
    if len(stack_of):
        leaves = np.flatnonzero(np.concatenate(([True], stack_of[1:] != stack_of[:-1])))
    else:
        leaves = np.zeros(0, dtype=np.int64)
    leaf_keys = key_of[leaves]
    flat_values = np.bincount(leaf_keys, weights=values[stack_of[leaves]], minlength=nkeys)
    first_leaf = np.full(nkeys, len(leaves), dtype=np.int64)
    np.minimum.at(first_leaf, leaf_keys, np.arange(len(leaves), dtype=np.int64))

    def ordered(first, sums, limit):
        present = np.flatnonzero(first < limit)
        order = present[np.argsort(first[present], kind="stable")].tolist()
        sums = sums.tolist()
        return {names[i]: sums[i] for i in order}
    return ordered(first_leaf, flat_values, len(leaves)), ordered(first_seen, cum_values, len(key_of))
