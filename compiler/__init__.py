"""The compiler: spec files -> typed model -> formula trees -> checked DAG -> kernels + manifest.

Stages, each a module and each a function of the previous stage's output:

    yamlsrc   YAML text -> plain data with a position for every path
    schema    plain data -> JSON-Schema diagnostics
    model     plain data -> typed project and feature specs
    formula   formula text -> tree of frozen nodes (tokenize/parse with positions, no eval)
    resolve   trees -> resolved trees with grain and (left, right) windows, naming and lookahead checks
    dag       resolved features -> ordered DAG (cycles reported as a path)
    lower     DAG -> plan: fused tick kernels (one per source) and bar programs
    codegen   plan -> kernel source files (jinja2 templates)
    manifest  plan -> build/manifest.json
"""
