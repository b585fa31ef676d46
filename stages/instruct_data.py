"""instruct_data: paths.clean_repos (+ user files) → paths.instruct_data.

Sec. 3.7: Alpaca-format (or chat) instruction data. User files named in params are validated
record by record (every rejected record audited with its reason); so the default profile has
real data, documented functions of the clean corpus are mined as instructions. Everything is
decontaminated with the `decontam` rules and split train/validation by repository.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from dscoder.data.decontam import BenchmarkIndex, load_benchmark_strings
from dscoder.instruct import InstructDataSettings, build_instruct_data, write_instruct_data
from dscoder.data.stream import read_repos
from dscoder.paths import Paths, report_refs
from stages.common import Timer, load_params, load_paths, run_flow, stage_args, write_report
from dscoder.data.decontam import DecontamSettings

READS = ("clean_repos",)
WRITES = ("instruct_data", *report_refs("instruct_data"))


@flow(name="instruct_data", log_prints=True)
def instruct_data(params: InstructDataSettings, decontam_section: dict | None, paths: Paths | None = None) -> dict:
    paths = paths or load_paths()
    src, out = Path(paths.clean_repos), Path(paths.instruct_data)
    timer = Timer()
    dp = DecontamSettings.from_dict(decontam_section)
    strings, problems = load_benchmark_strings(dp)
    data = build_instruct_data(read_repos(src), params, BenchmarkIndex(strings, dp))
    timer.mark("build")
    write_instruct_data(out, data, params)
    timer.mark("write")
    print(f"instruct_data: {len(data.train)} train / {len(data.validation)} validation examples, "
          f"{len(data.audit)} audited")
    return write_report("instruct_data", {**data.stats, "train": len(data.train), "validation": len(data.validation),
                                          "audited": len(data.audit)}, timer, paths)


def main() -> None:
    args = stage_args(__doc__)
    params = load_params(args.params)
    run_flow(instruct_data, InstructDataSettings.from_dict(params.get("instruct_data"), "instruct_data"), params.get("decontam"),
             load_paths(params))


if __name__ == "__main__":
    main()
