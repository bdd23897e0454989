"""Where the wall time of a Snakemake run goes (for bench/default).

Three sources, all wall-clock (``time.time()``) times:

- Snakemake's own output, each line stamped as it arrived: a job's block (``rule x:`` ...
  ``jobid: n``) when Snakemake starts it, ``Finished jobid: n`` when it has seen it end;
- each job's log (``cot_potential.logs.job_log``): ``job started`` once its process is up and
  its imports are done, ``job done`` when its work is;
- the engine records (``cot_potential.engine_record``): when each engine began starting, was
  ready, and when each ``generate`` call began and ended.

Every job becomes pieces of time with a stage (job start-up, engine start, generate, grading,
...); at each moment the running pieces share the moment equally, and a moment with no job
running is Snakemake's own (planning, scheduling, bookkeeping).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

SNAKEMAKE = "Snakemake's own (planning, scheduling, between jobs)"
START_UP = "job start-up (process, Snakemake's script, imports)"
ENGINE_START = "engine start"
GENERATE = "generate"
ENGINE_JOB = "engine jobs outside the engine (inputs, tokenizer, tables)"
EXIT = "job exit (after its work: process end, Snakemake noticing)"
GRADING = "grading"
PLOTTING = "plotting"
REPORT = "report"
OTHER = "other jobs (problems, prefixes, potentials, events, tables, ...)"
STAGES = (ENGINE_START, GENERATE, ENGINE_JOB, START_UP, EXIT, GRADING, PLOTTING, REPORT, OTHER, SNAKEMAKE)

_BLOCK = re.compile(r"^(?:local)?(?:rule|checkpoint) (\S+):$")
_FINISHED = re.compile(r"^Finished jobid: (\d+)")
_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) INFO cot_potential: "
                       r"(job started|job done)(?: \(pid (\d+)\))?")


@dataclass
class Job:
    jobid: int
    rule: str
    submitted: float
    fields: dict[str, str] = field(default_factory=dict)
    finished: float | None = None
    started: float | None = None  # "job started" in its log
    done: float | None = None  # "job done" in its log
    pid: int | None = None  # its process, from its log
    engine: dict[str, Any] | None = None  # its engine record


def parse_snakemake(lines: Iterable[tuple[float, str]]) -> dict[int, Job]:
    """The jobs of a run from Snakemake's output, ``(arrival time, line)`` pairs."""
    jobs: dict[int, Job] = {}
    block: tuple[float, str, dict[str, str]] | None = None
    for stamp, line in lines:
        line = line.rstrip("\n")
        if m := _BLOCK.match(line):
            block = (stamp, m.group(1), {})
        elif block and line.startswith("    ") and ":" in line:
            key, value = line.strip().split(":", 1)
            block[2][key] = value.strip()
            if key == "jobid":
                jobs[int(value)] = Job(int(value), block[1], block[0], block[2])
        elif m := _FINISHED.match(line):
            block = None
            if int(m.group(1)) in jobs:
                jobs[int(m.group(1))].finished = stamp
        elif not line.strip():
            block = None
    return jobs


def read_job_log(path: Path) -> tuple[float | None, float | None, int | None]:
    """When the job's own work began and ended, and its process (its last ``job started``)."""
    started = done = pid = None
    if path.is_file():
        for line in path.read_text(errors="replace").splitlines():
            if m := _LOG_TIME.match(line):
                stamp = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").timestamp() + int(m.group(2)) / 1000
                if m.group(3) == "job started":
                    started, done, pid = stamp, None, int(m.group(4))
                else:
                    done = stamp
    return started, done, pid


def attach(jobs: dict[int, Job], workdir: Path, records: Sequence[dict[str, Any]]) -> None:
    """Add each job's log times, and each engine record to the job whose process wrote it."""
    for job in jobs.values():
        if "log" in job.fields:
            job.started, job.done, job.pid = read_job_log(workdir / job.fields["log"].split(",")[0].strip())
    for record in records:
        owner = [j for j in jobs.values() if j.pid == record["pid"]]
        if len(owner) != 1:
            raise ValueError(f"engine record of pid {record['pid']} matches {len(owner)} jobs")
        owner[0].engine = record


def stage_of(rule: str) -> str:
    if rule == "grade":
        return GRADING
    if rule.startswith("plot_"):
        return PLOTTING
    return REPORT if rule == "report" else OTHER


def pieces(job: Job) -> list[tuple[float, float, str]]:
    """A finished job as ``(begin, end, stage)`` pieces that cover it."""
    started = job.started if job.started is not None else job.submitted
    end = job.done if job.done is not None else job.finished
    out = [(job.submitted, started, START_UP), (end, job.finished, EXIT)]
    if job.engine is None:
        return out + [(started, end, stage_of(job.rule))]
    record = job.engine
    marks = [(record["began"], record["ready"], ENGINE_START)]
    marks += [(call["began"], call["ended"], GENERATE) for call in record["calls"]]
    cursor = started
    for begin, stop, stage in marks:
        out += [(cursor, begin, ENGINE_JOB), (begin, stop, stage)]
        cursor = stop
    return out + [(cursor, end, ENGINE_JOB)]


def attribute(jobs: Iterable[Job], begin: float, end: float) -> dict[str, float]:
    """Seconds of the wall time ``[begin, end]`` per stage; running pieces share each moment."""
    spans = [(max(b, begin), min(e, end), stage) for job in jobs for b, e, stage in pieces(job) if e > b]
    cuts = sorted({begin, end, *(b for b, _, _ in spans), *(e for _, e, _ in spans)})
    seconds: dict[str, float] = defaultdict(float)
    for left, right in zip(cuts, cuts[1:]):
        running = [stage for b, e, stage in spans if b <= left and right <= e]
        for stage in running or [SNAKEMAKE]:
            seconds[stage] += (right - left) / max(1, len(running))
    return dict(seconds)
