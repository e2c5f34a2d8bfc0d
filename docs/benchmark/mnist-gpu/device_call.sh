set -o pipefail; export PYTHONUNBUFFERED=1 GENBENCH_GIT_COMMIT=b1aa788b0ad74a0e5bffd94d2a5f6e5d8a3e8743 GENBENCH_CACHE=/tmp/gbc HYDRA_FULL_ERROR=0 WANDB_MODE=offline
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit 3
mkdir -p /tmp/data/MNIST/raw; for f in .gpudata/*.gz; do gunzip -c $f > /tmp/data/MNIST/raw/$(basename $f .gz); done
nvidia-smi > $OUT/nvidia-smi.txt 2>&1; nproc >> $OUT/nvidia-smi.txt
python3 -c "import torch,lightning,hydra,torch_fidelity,genbench.train;print(torch.__version__,lightning.__version__,torch.cuda.get_device_name())" 2>&1 | tee $OUT/log.txt || exit 4
DATA=/tmp/data PY=python3 TRAIN_TIMEOUT=290 EVAL_TIMEOUT=90 DEADLINE=520 MODELS="arm diffusion flow_matching vae flow gan ebm" timeout 545 scripts/gpu_mnist_benchmark.sh /tmp/mg 5e14 2>&1 | tee -a $OUT/log.txt
python3 scripts/slim_checkpoints.py /tmp/mg /tmp/slim >> $OUT/log.txt 2>&1
tar czf $OUT/mnist-gpu.tgz --exclude='*.ckpt' -C /tmp mg; tar cf - -C /tmp slim | split -b 15M - $OUT/slim.tar.part-; ls -la $OUT
