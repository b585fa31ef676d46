"""Instruction tuning data (Sec. 3.7): user files, mined examples, the Instruct prompt layout,
masked packing. The v1.5 mixture lives in dscoder.train.mixture."""

from dscoder.instruct.dataset import (InstructData, InstructDataSettings, InstructFile, build_instruct_data,
                                      decontaminate_examples, read_examples, write_instruct_data)
from dscoder.instruct.mining import MiningSettings, docstrings, mine_repos
from dscoder.instruct.instruct_pack import InstructPackSettings, pack_instructions
from dscoder.instruct.records import Example, load_instruction_file
from dscoder.instruct.template import (CHAT_TEMPLATE, DEFAULT_SYSTEM_PROMPT, EOT, chat_template, encode_conversation,
                                       save_chat_tokenizer,
                                       render, set_chat_template)

__all__ = [
    "CHAT_TEMPLATE", "DEFAULT_SYSTEM_PROMPT", "EOT", "Example", "InstructData", "InstructDataSettings", "InstructFile",
    "InstructPackSettings", "MiningSettings", "build_instruct_data", "chat_template", "decontaminate_examples", "docstrings",
    "encode_conversation", "load_instruction_file", "mine_repos", "pack_instructions", "read_examples", "render",
    "save_chat_tokenizer", "set_chat_template", "write_instruct_data",
]
