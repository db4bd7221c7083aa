# gamealign study DAG. Thin by design: the config is validated against
# workflow/schemas/config.schema.yaml (defaults filled) before anything runs, then each stage's
# rules are included. Choose a study with --configfile (default: config.yaml next to this file).
import sys

from gamealign.config import ConfigError, validate_config

if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/config.yaml"


try:
    validate_config(config)
except ConfigError as exc:
    sys.exit(f"gamealign: invalid config: {exc}")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/prompts.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/annotate.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/game.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        f"{R}/report/comparison.md",
    default_target: True
