# Worker image for Dataflow (or any portable Beam runner): `--sdk_container_image=IMAGE`.
# Beam's own Python SDK image, at the Beam version the launcher uses (pip show apache-beam), plus this
# project without the trainer's extras: no torch, no CUDA wheels on the workers.
ARG BEAM_VERSION=2.77.0
FROM apache/beam_python3.11_sdk:${BEAM_VERSION}

WORKDIR /opt/webcorpus-gpt
COPY pyproject.toml setup.py README.md LICENSE ./
COPY pipeline ./pipeline
COPY tokenizer ./tokenizer
COPY model ./model
COPY train ./train
# The image's apache-beam already satisfies the requirement, so pip keeps it.
RUN pip install --no-cache-dir . && python -c "import pipeline.text.lang, trafilatura, lxml.html.clean"
