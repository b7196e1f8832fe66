# The ktrdr image: one image, every service (`ktrdr api|projector|trainer|db upgrade|up`).
# CPU-only PyTorch: the default Linux wheel drags in gigabytes of CUDA libraries a CPU trainer
# never uses. GPU trainers run natively (or from a CUDA base image), not from this file.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# torch first, pinned, from the CPU index: with it present the `trainer` extra's range
# installs nothing more (the same order ./dev uses).
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"

# Dependencies in their own layer: it is rebuilt only when pyproject.toml changes. Stub
# packages let the editable install resolve; the real code is copied over them below.
COPY pyproject.toml README.md ./
RUN mkdir -p libs services \
    && touch libs/__init__.py services/__init__.py \
    && pip install -e ".[trainer]"

# An editable install on purpose: the migrations (`ktrdr db upgrade`) are found next to libs/.
COPY alembic.ini ./
COPY migrations migrations
COPY libs libs
COPY services services
COPY strategies strategies
COPY data data

RUN useradd --create-home --uid 10001 ktrdr \
    && mkdir -p /app/models /app/var \
    && chown ktrdr:ktrdr /app/models /app/var
USER ktrdr

ENV KTRDR_MODELS_DIR=/app/models \
    KTRDR_DATA_DIR=/app/data \
    KTRDR_STRATEGIES_DIR=/app/strategies \
    KTRDR_HOST=0.0.0.0 \
    KTRDR_PORT=8000

EXPOSE 8000
ENTRYPOINT ["ktrdr"]
# Without compose: the whole service in one container (SQLite + in-process bus).
CMD ["up"]
