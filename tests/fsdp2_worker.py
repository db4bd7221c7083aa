"""Run under `torchrun --nproc_per_node 2` (gloo, CPU) by tests/test_fsdp2.py: the policy's per-sequence
log-probs and their gradients with FSDP2 sharding (torch's `fully_shard`, per decoder layer and root,
as configs/accelerate/fsdp.yaml asks) against the same model unsharded. Each rank writes its findings
to <out_dir>/rank<N>.json (one file each: the ranks' stdout lines can interleave)."""

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard

from gamealign.logprobs import PolicyLogprobs, padded_rows
from gamealign.models import load_model


def main(model_dir: str, out_dir: str) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    model, tok = load_model(model_dir)
    gen = torch.Generator().manual_seed(0)
    lengths = [20, 31, 17, 26]  # right-padded batch rows of different lengths, 4 prompt tokens each
    seqs = [([int(x) for x in torch.randint(5, 1000, (n,), generator=gen)], 4) for n in lengths]
    whole = PolicyLogprobs(model, chunk=16)  # chunk < response tokens: several checkpointed chunks
    lp = whole(*padded_rows(seqs, tok.pad_token_id))
    lp.sum().backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf")).item()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}

    sharded_model, _ = load_model(model_dir)
    policy = PolicyLogprobs(sharded_model, chunk=16)
    before = list(policy.parameters())
    mesh = init_device_mesh("cpu", (world,))
    for layer in sharded_model.model.layers:
        fully_shard(layer, mesh=mesh, reshard_after_forward=True)
    fully_shard(policy, mesh=mesh, reshard_after_forward=True)
    mine = slice(rank * len(lengths) // world, (rank + 1) * len(lengths) // world)
    lp_sharded = policy(*padded_rows(seqs[mine], tok.pad_token_id))
    lp_sharded.sum().backward()  # FSDP averages over processes: each gradient is the sum / world
    after = list(policy.parameters())
    # the gradient norm over the prepared (sharded) parameters, as the trainer clips
    norm_sharded = torch.nn.utils.clip_grad_norm_(after, float("inf")).full_tensor().item() * world
    grad_diff = max((p.grad.full_tensor() * world - grads[n]).abs().max().item()
                    for n, p in sharded_model.named_parameters())
    (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps({
        "rank": rank,
        "logprob_diff": (lp_sharded - lp[mine].detach()).abs().max().item(),
        "grad_diff": grad_diff, "grad_scale": max(g.abs().max().item() for g in grads.values()),
        "norm": norm, "norm_sharded": norm_sharded,
        "sharded": all(type(p).__name__ == "DTensor" for p in after),
        "replaced": sum(all(p is not q for q in after) for p in before), "n_params": len(before),
        "old_params_have_grads": any(p.grad is not None for p in before),
    }))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
