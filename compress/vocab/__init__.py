"""Vocabulary trimming: keep the tokens a domain uses, rewrite the embedding matrix and the tokenizer together."""
