"""Task families beyond sentence-level heads: token classification (NER) and extractive QA data."""
