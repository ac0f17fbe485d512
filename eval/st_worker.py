"""A worker for eval/bench_speed.py --st-python: sentence-transformers' own ONNX int8 backend, timed in its own
Python environment.

sentence-transformers runs ONNX through optimum-onnx, whose only release (0.1.0) needs transformers < 4.58, while
sentsim runs on transformers 5; so the peer's ONNX backend lives in a second environment, for example:

    python -m venv ../st-onnx && ../st-onnx/bin/pip install torch==2.13.0 "transformers<4.58" \\
        "optimum-onnx[onnxruntime]==0.1.0" "sentence-transformers>=5,<6"

Usage: PYTHON eval/st_worker.py MODEL_DIR CACHE_DIR [CONFIG]. MODEL_DIR (a sentence-transformers folder) is copied
to CACHE_DIR once, exported to ONNX there and quantized with `export_dynamic_quantized_onnx_model(model, CONFIG)`
(default avx512_vnni), as sentence-transformers' documentation does it. Then one JSON line on stdout (versions,
export seconds), and for each JSON line {"texts": [...], "batch_size": N} on stdin one line {"seconds": S,
"embeddings": base64 float32}: S is the `encode` call alone, so the pipe costs nothing in the comparison.
"""

from __future__ import annotations

import base64
import json
import shutil
import sys
import time
from pathlib import Path


def main() -> int:
    source, cache = Path(sys.argv[1]), Path(sys.argv[2])
    config = sys.argv[3] if len(sys.argv) > 3 else "avx512_vnni"
    import numpy as np
    import sentence_transformers
    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

    file_name = f"onnx/model_qint8_{config}.onnx"
    started = time.perf_counter()
    if not (cache / file_name).is_file():
        shutil.rmtree(cache, ignore_errors=True)
        shutil.copytree(source, cache)
        fp32 = SentenceTransformer(str(cache), backend="onnx", device="cpu")
        fp32.save_pretrained(str(cache))
        export_dynamic_quantized_onnx_model(fp32, config, str(cache))
    export_s = time.perf_counter() - started
    model = SentenceTransformer(str(cache), backend="onnx", device="cpu", model_kwargs={"file_name": file_name})
    info = {"sentence_transformers": sentence_transformers.__version__, "file": file_name, "export_s": export_s}
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        started = time.perf_counter()
        emb = model.encode(request["texts"], batch_size=request["batch_size"], normalize_embeddings=True)
        seconds = time.perf_counter() - started
        data = base64.b64encode(np.ascontiguousarray(emb, dtype=np.float32).tobytes()).decode()
        print(json.dumps({"seconds": seconds, "embeddings": data}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
