"""Frames in a stripped library named after the nearest exported symbol:
--text keeps gperftools' name, --json marks them."""
import json

from helpers import err, pprof, stripped_library_profile as _profile, text

def test_stripped_library_frames_are_marked_in_json(tmp_path):
    prof = _profile(tmp_path, strip=True)
    rows = text(pprof(["--text", "--no-cache", prof])).splitlines()
    # --text: gperftools' name, the exported function before the code
    assert rows[1].split()[-1] == "api_before" and rows[1].split()[0] == "7"
    proc = pprof(["--json", "--stacks", "--no-cache", prof])
    assert proc.returncode == 0, err(proc)
    doc = json.loads(proc.stdout)
    # internal_hot's code, past api_before's extent: marked; api_entry's own
    # code is named rightly
    marks = {row["name"]: row.get("name_source") for row in doc["rows"]}
    assert marks == {"api_before": "nearest exported symbol", "api_entry": None}
    frames = {f["name"]: f.get("name_source") for s in doc["stacks"] for f in s["frames"]}
    assert frames == marks


def test_unstripped_library_is_not_marked(tmp_path):
    prof = _profile(tmp_path, strip=False)
    doc = json.loads(pprof(["--json", "--stacks", "--no-cache", prof]).stdout)
    assert [row["name"] for row in doc["rows"]][:1] == ["internal_hot"]
    assert all("name_source" not in row for row in doc["rows"])
    assert all("name_source" not in f for s in doc["stacks"] for f in s["frames"])
