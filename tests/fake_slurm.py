"""A stand-in for Slurm's commands on one machine, for testing ``--executor slurm``
through submitit's real Slurm executor: installed under the names sbatch, srun, sacct and
scancel (``install``), it runs each submitted batch script as a local process and answers
sacct from the state files it keeps in ``$FAKE_SLURM_DIR``.

- ``sbatch SCRIPT`` copies the script to ``<id>.sbatch`` (what a test inspects), starts it
  in the background with the SLURM_* variables a one-task job has, and prints "Submitted
  batch job <id>".
- ``srun [--opt value | --opt=value]... COMMAND...`` runs COMMAND with its output and error
  sent where ``--output`` and ``--error`` say (``%j`` the job id, ``%t`` the task, 0).
- ``sacct ... -j ID[,ID]`` prints ``JobID|State|NodeList`` rows: RUNNING, then COMPLETED or
  FAILED by the script's exit status.
- ``scancel`` records the call and does nothing else.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

COMMANDS = ("sbatch", "srun", "sacct", "scancel")


def install(bin_dir: Path) -> None:
    """Put the four commands in ``bin_dir`` (prepend it to PATH to use them)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in COMMANDS:
        script = bin_dir / name
        script.write_text(f"#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} {name} \"$@\"\n")
        script.chmod(0o755)


def _state() -> Path:
    return Path(os.environ["FAKE_SLURM_DIR"])


def sbatch(args: list[str]) -> int:
    script = Path(args[-1])
    state = _state()
    state.mkdir(parents=True, exist_ok=True)
    job_id = str(len(list(state.glob("*.sbatch"))) + 1000)
    (state / f"{job_id}.sbatch").write_text(script.read_text())
    (state / f"{job_id}.state").write_text("RUNNING")
    env = {**os.environ, "SLURM_JOB_ID": job_id, "SLURM_NTASKS": "1", "SLURM_JOB_NUM_NODES": "1",
           "SLURM_NODEID": "0", "SLURM_JOB_NODELIST": "localhost", "SLURM_PROCID": "0", "SLURM_LOCALID": "0"}
    runner = f"sh {script}; if [ $? -eq 0 ]; then echo COMPLETED; else echo FAILED; fi > {state / job_id}.state"
    subprocess.Popen(["sh", "-c", runner], env=env, start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"Submitted batch job {job_id}")
    return 0


def srun(args: list[str]) -> int:
    options: dict[str, str] = {}
    while args and args[0].startswith("--"):
        flag = args.pop(0)
        if "=" in flag:
            name, value = flag[2:].split("=", 1)
        elif flag == "--unbuffered":
            continue
        else:
            name, value = flag[2:], args.pop(0)
        options[name] = value.replace("%j", os.environ.get("SLURM_JOB_ID", "0")).replace("%t", "0")
    out = open(options.get("output", os.devnull), "a")
    err = open(options["error"], "a") if "error" in options else out
    return subprocess.call(args, stdout=out, stderr=err)


def sacct(args: list[str]) -> int:
    ids = args[args.index("-j") + 1].split(",") if "-j" in args else []
    print("JobID|State|NodeList")
    for job_id in ids:
        path = _state() / f"{job_id}.state"
        print(f"{job_id}|{path.read_text().strip() if path.exists() else 'PENDING'}|localhost")
    return 0


def scancel(args: list[str]) -> int:
    with open(_state() / "scancel.log", "a") as log:
        log.write(" ".join(args) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit({"sbatch": sbatch, "srun": srun, "sacct": sacct, "scancel": scancel}[sys.argv[1]](sys.argv[2:]))
