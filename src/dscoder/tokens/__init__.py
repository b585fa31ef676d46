"""The token step (Sec. 3.1): tokenizer, Fill-in-the-Middle, packing into training tokens.

    tokenizer.py     the BPE tokenizer: sample, train, save, load (the `tokenizer` stage)
    fim.py           FIM transforms of a document or a file (PSM, SPM, MSP) and their settings
    fim_windows.py   FIM applied to packed windows (`fim.unit: window`)
    split.py         the train/validation split by repository
    pack.py          REPOS rows → train.bin / val.bin and their index (the `pack` stage)
    index.py         the token-to-source lookup over that index (`TokenIndex`, `token_source`)
"""
