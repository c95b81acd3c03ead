#!/usr/bin/env bash
# Run an llbgen PyTorch image on a GPU host.
#   IMAGE=pytorch:2.3.0-python3.8-cuda12.1.0-cudnn8-devel-ubuntu22.04 ./docker-run.sh
# Needs the NVIDIA Container Toolkit for --gpus (GPUS=none: no GPUs). Your SSH public key is read from
# ~/.ssh/id_ed25519.pub (or PUBLIC_KEY_FILE); the Jupyter token is random unless JUPYTER_TOKEN is set.
#
# What survives the container: the volumes $NAME-work (/root/work, your notebooks and code) and
# $NAME-tensorboard (/root/tensorboard-logs). Never a volume over /root: /root holds
# /root/miniconda3, and a volume there would keep the first image's Python packages for every
# later, newer image run with the same NAME.
set -euo pipefail

IMAGE=${IMAGE:-pytorch:2.3.0-python3.8-cuda12.1.0-cudnn8-devel-ubuntu22.04}
NAME=${NAME:-pytorch}
GPUS=${GPUS:-all}            # every GPU; '"device=0,1"' for some; none for none
SSH_PORT=${SSH_PORT:-2222}
JUPYTER_PORT=${JUPYTER_PORT:-8888}
TENSORBOARD_PORT=${TENSORBOARD_PORT:-6006}
# NVIDIA's advice for PyTorch; ULIMITS= (empty) where the host may not raise them (e.g. inside a container).
read -r -a ulimits <<<"${ULIMITS---ulimit memlock=-1 --ulimit stack=67108864}"
KEY_FILE=${PUBLIC_KEY_FILE:-$HOME/.ssh/id_ed25519.pub}
JUPYTER_TOKEN=${JUPYTER_TOKEN:-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}

args=(
  --detach --name "$NAME"
  --ipc=host                 # PyTorch DataLoader workers share memory through /dev/shm
  ${ulimits[@]+"${ulimits[@]}"}
  -p "$SSH_PORT:22"          # ssh -p 2222 root@HOST
  -p "$JUPYTER_PORT:8888"    # http://HOST:8888/jupyter
  -p "$TENSORBOARD_PORT:6006"  # http://HOST:6006/monitor
  -v "$NAME-work:/root/work"                     # your work: kept across containers and images
  -v "$NAME-tensorboard:/root/tensorboard-logs"  # TensorBoard's logdir: kept too
  -e JUPYTER_TOKEN="$JUPYTER_TOKEN"
)
if [ "$GPUS" != none ]; then
  args+=(--gpus "$GPUS")
fi
if [ -r "$KEY_FILE" ]; then
  # Passed as a file, so the key list is not visible in `docker inspect`.
  args+=(-v "$KEY_FILE:/run/secrets/authorized_key.pub:ro" -e PUBLIC_KEY_FILE=/run/secrets/authorized_key.pub)
fi

docker run "${args[@]}" "$IMAGE"
echo "ssh -p $SSH_PORT root@localhost          (work in /root/work: it outlives the container)"
echo "http://localhost:$JUPYTER_PORT/jupyter/lab?token=$JUPYTER_TOKEN"
echo "http://localhost:$TENSORBOARD_PORT/monitor/"
