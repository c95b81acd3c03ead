#!/usr/bin/env bash
# Run an llbgen PyTorch image on a GPU host.
#   IMAGE=pytorch:2.3.0-python3.8-cuda12.1.0-cudnn8-devel-ubuntu22.04 ./docker-run.sh
# Needs the NVIDIA Container Toolkit for --gpus. Your SSH public key is read from
# ~/.ssh/id_ed25519.pub (or PUBLIC_KEY_FILE); the Jupyter token is random unless JUPYTER_TOKEN is set.
set -euo pipefail

IMAGE=${IMAGE:-pytorch:2.3.0-python3.8-cuda12.1.0-cudnn8-devel-ubuntu22.04}
NAME=${NAME:-pytorch}
KEY_FILE=${PUBLIC_KEY_FILE:-$HOME/.ssh/id_ed25519.pub}
JUPYTER_TOKEN=${JUPYTER_TOKEN:-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}

args=(
  --detach --name "$NAME"
  --gpus all                 # every GPU; use --gpus '"device=0,1"' for some
  --ipc=host                 # PyTorch DataLoader workers share memory through /dev/shm
  --ulimit memlock=-1 --ulimit stack=67108864
  -p 2222:22                 # ssh -p 2222 root@HOST
  -p 8888:8888               # http://HOST:8888/jupyter
  -p 6006:6006               # http://HOST:6006/monitor
  -v "$NAME-root:/root"      # notebooks, conda envs, /root/tensorboard-logs survive the container
  -e JUPYTER_TOKEN="$JUPYTER_TOKEN"
)
if [ -r "$KEY_FILE" ]; then
  # Passed as a file, so the key list is not visible in `docker inspect`.
  args+=(-v "$KEY_FILE:/run/secrets/authorized_key.pub:ro" -e PUBLIC_KEY_FILE=/run/secrets/authorized_key.pub)
fi

docker run "${args[@]}" "$IMAGE"
echo "ssh -p 2222 root@localhost"
echo "http://localhost:8888/jupyter/lab?token=$JUPYTER_TOKEN"
echo "http://localhost:6006/monitor/"
