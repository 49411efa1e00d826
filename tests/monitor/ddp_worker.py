"""One rank of the two-process gloo test (run as a script by test_distributed.py).

Unit 0 is active only on rank 0's data (x = +1), unit 1 only on rank 1's (x = -1), unit 2 on neither.
"""

import json
import sys

import torch
import torch.distributed as dist
from torch import nn

from relulab import Monitor

rank, world, init_file, out_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
model = nn.Sequential(nn.Linear(1, 3), nn.ReLU())
with torch.no_grad():
    model[0].weight.copy_(torch.tensor([[1.0], [-1.0], [0.0]]))
    model[0].bias.copy_(torch.tensor([0.0, 0.0, -1.0]))
x = torch.full((5 + rank, 1), 1.0 if rank == 0 else -1.0)
with Monitor(model) as mon:
    model(x)
    local = mon._layer_list()[0].stats(None).dead_units  # this rank's view before the all-reduce
    report = mon.reset()
with open(out_file, "w") as handle:
    json.dump({"local": local, "report": report.to_dict(), "history": mon.history}, handle)
dist.destroy_process_group()
