cd /tmp/s1/main && export PATH=$PWD/.venv/bin:$PATH
T='{"accelerate_config": null, "batch_size": 8, "compile": false, "epochs": 2, "fused_kernels": "auto", "gradient_checkpointing": false, "group_by_length": true, "lr": 0.0001, "lr_scheduler": "constant", "max_grad_norm": 1.0, "max_length": 256, "micro_batch_size": null, "num_processes": 1, "peft": null, "shared_prefix": false, "steps_per_round": 8, "trainable_layers": 6, "warmup_ratio": 0.0}'
RT='{"checkpoint_every": 20, "logprob_chunk": 1024, "report_to": "none"}'
C="--init-model results/sft/model --ref-model results/sft/model --prompts results/prompts/train_r1.jsonl --samples results/runs/shared/r1/samples.jsonl --prefs results/runs/shared/r1/prefs.parquet --truncated keep --sample-stats results/runs/shared/r1/samples.stats.json --pref-stats results/runs/shared/r1/prefs.stats.json --tracking-dir /tmp/exp/tr"
dpo() { gamealign train --algorithm dpo --hparams '{"beta": 0.1, "pairs": "best_worst"}' --train "$T" --runtime "$RT" $C --plan-seed 3166729050 --out /tmp/exp/$1/dpo --seed 3474937261 --run-name dpo-r1 --threads $2 > /tmp/exp/$1/dpo.log 2>&1; }
sppo() { gamealign train --algorithm sppo --hparams '{"eta": 1000.0, "win_rate": "with_self"}' --train "$T" --runtime "$RT" $C --plan-seed 3685809906 --out /tmp/exp/$1/sppo --seed 3604670738 --run-name sppo-r1 --threads $2 > /tmp/exp/$1/sppo.log 2>&1; }
ev() { gamealign sample --greedy --model $3 --prompts results/prompts/eval_heldout.jsonl --out /tmp/exp/$1/ev_$4.jsonl --stats /tmp/exp/$1/ev_$4.stats.json --params '{"batch_size": 64, "max_new_tokens": 96}' --seed 3799721665 --backend auto --threads $2 > /tmp/exp/$1/ev_$4.log 2>&1; }
mkdir -p /tmp/exp/A /tmp/exp/B
t0=$(date +%s)
dpo A 2; sppo A 2; ev A 2 results/sft/model sft; ev A 2 results/runs/dpo/r1/model dpo
t1=$(date +%s); echo "A serial 2 threads: $((t1-t0)) s"
dpo B 1 & sppo B 1 & wait
ev B 1 results/sft/model sft & ev B 1 results/runs/dpo/r1/model dpo & wait
t2=$(date +%s); echo "B parallel 1 thread: $((t2-t1)) s"
