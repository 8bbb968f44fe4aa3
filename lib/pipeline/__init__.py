"""The pipeline: numbered notebooks run in order by papermill, parameterised by profiles.

``python -m lib.pipeline --profile default`` (see :mod:`lib.pipeline.__main__`).
"""
