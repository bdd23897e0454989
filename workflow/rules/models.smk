rule fetch_gguf:
    output:
        temp("resources/downloads/{weights}.gguf"),
    params:
        source=weights_spec,
    log:
        "logs/fetch_gguf/{weights}.log",
    conda:
        "../../envs/models.yaml"
    script:
        "../scripts/fetch_gguf.py"


rule convert_gguf:
    input:
        "resources/downloads/{weights}.gguf",
    output:
        directory("resources/models/{weights}"),
    params:
        source=weights_spec,
    log:
        "logs/convert_gguf/{weights}.log",
    resources:
        mem_mb=4000,
    conda:
        "../../envs/models.yaml"
    script:
        "../scripts/convert_gguf.py"


rule model_card:
    input:
        weights_inputs,
    output:
        "results/models/{model}/card.json",
    params:
        name=model_name,
        identity=model_identity,
    log:
        "logs/model_card/{model}.log",
    conda:
        "../../envs/models.yaml"
    script:
        "../scripts/model_card.py"
