"""The finetune stage: the teacher fine-tuned on the task's labelled rows with transformers' Trainer."""
