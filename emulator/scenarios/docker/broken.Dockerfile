FROM public.ecr.aws/docker/library/python:3.12-slim
WORKDIR /app
COPY requirements.txt ./
RUN python -m venv --without-pip /opt/venv && /opt/venv/bin/python -c "import sys; print(sys.prefix)"
ENV PATH=/opt/venv/bin:$PATH
COPY app/ ./app/
# A build-time check that fails: the settings file it reads is not in the repository.
RUN python -c "import json; json.load(open('/app/settings.json'))"
USER 1000
CMD ["python", "-m", "app.server"]
