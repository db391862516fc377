"""`python -m explorer ...`: see explorer/cli.py.

OpenMP's waiting: a command typed in a shell keeps OpenMP's default (threads spin briefly before
they sleep), the fastest when the run has the cores to itself: LeNet-5 on mnist5k trains at
~13,000 images/s on 2 cores, against ~7,000 when threads sleep at once (bench/cpu_threads.py). Every
process that explorer starts for others (the job queue's runs, sweep trials, Ray workers) gets
OMP_WAIT_POLICY=PASSIVE in its environment instead, and small networks then train on one thread
(explorer.training.plan.CPU_THREAD_MIN_MACS), so runs on a shared server never spin against each
other or against the app. Set OMP_WAIT_POLICY=PASSIVE yourself to run commands the same way.
"""

import gc
import sys

from explorer.cli import main

code = main()
# The command's work is done and its files are closed. Python's last garbage collections walk the
# hundreds of thousands of objects that torch's modules hold: 0.6-0.9 s of exit on 2 CPU cores.
# Frozen objects are skipped (refcounting still frees the rest and atexit handlers still run).
gc.freeze()
sys.exit(code)
