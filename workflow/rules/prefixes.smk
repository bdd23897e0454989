rule cut_prefixes:
    input:
        card="results/models/{model}/card.json",
        traces="results/traces/{model}/{dataset}.parquet",
    output:
        "results/prefixes/{model}/{dataset}.parquet",
    wildcard_constraints:
        model=MODEL_RUN,
    params:
        settings=config["prefixes"],
        # Answer cuts sit where the locator finds the answer: a new locator re-cuts.
        locator_version=LOCATOR_VERSION,
    log:
        "logs/cut_prefixes/{model}/{dataset}.log",
    conda:
        ENGINE_ENV
    script:
        "../scripts/cut_prefixes.py"
