cd /tmp/s1/main && export PATH=/work/main/.venv/bin:$PATH
OUT=${OUT:-/tmp/trunk_cache}
RT='{"checkpoint_every": 20, "logprob_chunk": 1024, "report_to": "none"}'
C="--init-model results/sft/model --ref-model results/sft/model --prompts results/prompts/train_r1.jsonl --samples results/runs/shared/r1/samples.jsonl --prefs results/runs/shared/r1/prefs.parquet --truncated keep --sample-stats results/runs/shared/r1/samples.stats.json --pref-stats results/runs/shared/r1/prefs.stats.json --tracking-dir /tmp/exp/tr"
for v in "false false" "true false" "true true" "false true"; do
set -- $v
T='{"accelerate_config": null, "batch_size": 8, "compile": false, "epochs": 2, "fused_kernels": "auto", "gradient_checkpointing": false, "group_by_length": true, "lr": 0.0001, "lr_scheduler": "constant", "max_grad_norm": 1.0, "max_length": 256, "micro_batch_size": null, "num_processes": 1, "peft": null, "shared_prefix": '$2', "cache_trunk": '$1', "steps_per_round": 8, "trainable_layers": 6, "warmup_ratio": 0.0}'
o=$OUT/c$1-p$2; mkdir -p $o
t0=$(date +%s.%N)
gamealign train --algorithm dpo --hparams '{"beta": 0.1, "pairs": "best_worst"}' --train "$T" --runtime "$RT" $C --plan-seed 3166729050 --out $o/dpo --seed 3474937261 --run-name dpo-r1 --threads 2 > $o/dpo.log 2>&1
t1=$(date +%s.%N)
gamealign train --algorithm wind --hparams '{"beta": 0.1, "eta": 1.0, "label": "sample", "ties": "keep"}' --train "$T" --runtime "$RT" --init-model results/runs/wind/r1/model --ref-model results/sft/model --prompts results/prompts/train_r2.jsonl --samples results/runs/wind/r2/samples.jsonl --prefs results/runs/wind/r2/prefs.parquet --truncated keep --plan-seed 2023352701 --sample-stats results/runs/wind/r2/samples.stats.json --pref-stats results/runs/wind/r2/prefs.stats.json --prev-manifest results/runs/wind/r1/model/manifest.json --out $o/wind2 --seed 2824228832   --run-name wind-r2 --tracking-dir /tmp/exp/tr --threads 2 > $o/wind2.log 2>&1
t2=$(date +%s.%N)
echo "cache=$1 prefix=$2 dpo_r1 $(echo "$t1-$t0"|bc) wind_r2 $(echo "$t2-$t1"|bc)"
done
