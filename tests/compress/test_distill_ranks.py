"""torchrun with 2 CPU processes (gloo): each rank distills disjoint rows, together the whole corpus once,
and each rank writes its own shard of the teacher cache."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from compress.data.rows import builtin_pydoc_sentences
from compress.distill.cache import ROWS_FILE, record_dtype, text_key

SCRIPT = textwrap.dedent('''
    import json, os, sys
    from pathlib import Path

    from compress.data.rows import TextData, builtin_pydoc_sentences
    from compress.distill import engine
    from compress.distill.config import DistillConfig, LossWeights
    from compress.distill.student import student_from_teacher
    from compress.model.loading import load_model, load_tokenizer

    model, out, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    seen = []
    call = engine.DistillCollator.__call__

    def recording(self, features):  # what this rank's dataloader hands the trainer
        batch = call(self, features)
        seen.extend(batch["key"].tolist())
        return batch

    engine.DistillCollator.__call__ = recording
    teacher = load_model(model, "embedding")
    student, picked = student_from_teacher(teacher, num_layers=1)
    cfg = DistillConfig(epochs=1, batch_size=4, learning_rate=1e-3, warmup_ratio=0.0, logging_steps=2,
                        loss=LossWeights(cos=1.0, embed_mse=1.0))
    res = engine.distill_model(teacher, student, load_tokenizer(model), TextData(builtin_pydoc_sentences()[:n]),
                               None, "embedding", cfg, 32, out / "distill", 0, picked_layers=picked,
                               save_checkpoints=False, cache_dir=out / ".cache")
    rank = int(os.environ["RANK"])
    (out / f"rank{rank}.json").write_text(json.dumps({"keys": seen, "metrics": res.metrics}, default=str))
''')


def _shard_keys(folder: Path) -> list[int]:
    return np.fromfile(folder / ROWS_FILE, dtype=record_dtype(32, 0))["key"].tolist()  # a 32-wide, logit-free cache


def test_ranks_see_disjoint_rows_covering_the_corpus(tiny_bert_dir, tmp_path):
    n = 64  # 2 ranks x batch 4 x 8 steps: one epoch, no padding rows
    script = tmp_path / "ranks.py"
    script.write_text(SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script), str(tiny_bert_dir),
           str(tmp_path), str(n)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parents[2])
    assert res.returncode == 0, res.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    corpus = {text_key(t) for t in builtin_pydoc_sentences()[:n]}
    assert len(r0["keys"]) == len(r1["keys"]) == n // 2
    assert not set(r0["keys"]) & set(r1["keys"])
    assert set(r0["keys"]) | set(r1["keys"]) == corpus
    assert r0["metrics"]["world_size"] == 2 and r0["metrics"]["steps"] == 8
    (teacher_dir,) = (tmp_path / ".cache" / "teacher").iterdir()
    s0, s1 = _shard_keys(teacher_dir / "shard-0"), _shard_keys(teacher_dir / "shard-1")
    assert set(s0) == set(r0["keys"]) and set(s1) == set(r1["keys"])  # each rank wrote its own rows only
