#!/usr/bin/env python3
"""Writes hf_features.json: two small tokenizer.json files exercising features the shared
vocabularies do not use (Metaspace, unk with fuse_unk, lstrip/rstrip/single_word added tokens,
normalized added tokens, NFKC/NFD/Lowercase/Replace-regex/Strip normalizers, Split behaviours,
ByteLevel with its own regex and prefix space, Roberta and suffix templates, ignore_merges), with
Hugging Face tokenizers' ids for a few texts in each mode and its decode. test_hf_features.c
checks libkuiper against them. Needs `pip install tokenizers`; the committed file was made with
tokenizers 0.23.3."""
import json, os
from tokenizers import Tokenizer, __version__

def bytes_to_unicode():
    bs=list(range(ord('!'),ord('~')+1))+list(range(ord('¡'),ord('¬')+1))+list(range(ord('®'),ord('ÿ')+1))
    cs=bs[:];n=0
    for b in range(256):
        if b not in bs: bs.append(b); cs.append(256+n); n+=1
    return {b:chr(c) for b,c in zip(bs,cs)}

# T1: Metaspace, unk + fuse_unk, added tokens with lstrip/rstrip/single_word, Roberta post-processor
chars = list("abcdehlorstw") + ["▁"]
vocab = {"<unk>":0, "<s>":1, "</s>":2}
for c in chars: vocab[c]=len(vocab)
merges = [("▁","h"),("▁h","e"),("l","l"),("▁he","ll"),("▁hell","o"),("c","a"),("ca","t"),("▁","w"),("o","r")]
for a,b in merges:
    if a+b not in vocab: vocab[a+b]=len(vocab)
n=len(vocab)
t1 = {
 "version":"1.0","truncation":None,"padding":None,
 "added_tokens":[
   {"id":0,"content":"<unk>","single_word":False,"lstrip":False,"rstrip":False,"normalized":False,"special":True},
   {"id":1,"content":"<s>","single_word":False,"lstrip":False,"rstrip":False,"normalized":False,"special":True},
   {"id":2,"content":"</s>","single_word":False,"lstrip":False,"rstrip":False,"normalized":False,"special":True},
   {"id":n,"content":"<mask>","single_word":False,"lstrip":True,"rstrip":False,"normalized":False,"special":True},
   {"id":n+1,"content":"[B]","single_word":False,"lstrip":False,"rstrip":True,"normalized":False,"special":False},
   {"id":n+2,"content":"cat","single_word":True,"lstrip":False,"rstrip":False,"normalized":False,"special":False},
 ],
 "normalizer":{"type":"Sequence","normalizers":[{"type":"NFKC"},{"type":"Lowercase"},
     {"type":"Replace","pattern":{"Regex":"[0-9]+"},"content":"#"},{"type":"Strip","strip_left":False,"strip_right":True}]},
 "pre_tokenizer":{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":True},
 "post_processor":{"type":"RobertaProcessing","sep":["</s>",2],"cls":["<s>",1],"trim_offsets":True,"add_prefix_space":True},
 "decoder":{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":True},
 "model":{"type":"BPE","dropout":None,"unk_token":"<unk>","continuing_subword_prefix":None,"end_of_word_suffix":None,
          "fuse_unk":True,"byte_fallback":False,"ignore_merges":False,"vocab":vocab,"merges":[[a,b] for a,b in merges]}
}
# T2: byte-level with Split behaviours and a ByteLevel pre-tokenizer using its own regex
bu = bytes_to_unicode()
vocab2 = {}
for b in range(256): vocab2[bu[b]] = len(vocab2)
m2 = [("Ġ","t"),("h","e"),("Ġt","he"),("i","n"),("Ġ","a"),("e","r"),("-","-"),("1","2"),("12","3")]
for a,b in m2:
    if a+b not in vocab2: vocab2[a+b]=len(vocab2)
n2=len(vocab2)
t2 = {
 "version":"1.0","truncation":None,"padding":None,
 "added_tokens":[{"id":n2,"content":"<|end|>","single_word":False,"lstrip":False,"rstrip":False,"normalized":False,"special":True},
                 {"id":n2+1,"content":"ther","single_word":False,"lstrip":False,"rstrip":False,"normalized":True,"special":False}],
 "normalizer":{"type":"NFD"},
 "pre_tokenizer":{"type":"Sequence","pretokenizers":[
     {"type":"Split","pattern":{"String":"-"},"behavior":"MergedWithPrevious","invert":False},
     {"type":"Split","pattern":{"Regex":"[0-9]"},"behavior":"Contiguous","invert":False},
     {"type":"Split","pattern":{"String":"::"},"behavior":"Removed","invert":False},
     {"type":"Split","pattern":{"Regex":"x+"},"behavior":"MergedWithNext","invert":False},
     {"type":"ByteLevel","add_prefix_space":True,"trim_offsets":True,"use_regex":True}]},
 "post_processor":{"type":"TemplateProcessing","single":[{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"<|end|>","type_id":0}}],
                   "pair":[{"Sequence":{"id":"A","type_id":0}},{"Sequence":{"id":"B","type_id":1}}],
                   "special_tokens":{"<|end|>":{"id":"<|end|>","ids":[n2],"tokens":["<|end|>"]}}},
 "decoder":{"type":"ByteLevel","add_prefix_space":True,"trim_offsets":True,"use_regex":True},
 "model":{"type":"BPE","dropout":None,"unk_token":None,"continuing_subword_prefix":None,"end_of_word_suffix":None,
          "fuse_unk":False,"byte_fallback":False,"ignore_merges":True,"vocab":vocab2,"merges":[a+" "+b for a,b in m2]}
}
texts1 = ["hello world", "Hello   <mask> cat", "a cat", "acat cat_ cats", "[B]   hello", "x <mask>   [B]  cat",
          "HELLO 1234 wörld  ", "zzz qqq hello", "", "   ", "ｈｅｌｌｏ", "<s>hello</s>", "hello<mask>", "cat"]
texts2 = ["the in the-dog", "a--b 123 12x3", "ab::cd::", "xxhello xx", "é e\u0301", "other<|end|>ther", "", "  the",
          "1-2-3", "in\tthe\nend"]
out = {}
for name, tj, texts in [("t1", t1, texts1), ("t2", t2, texts2)]:
    s = json.dumps(tj, ensure_ascii=False)
    tok = Tokenizer.from_str(s)
    cases = []
    for t in texts:
        row = {"text": t}
        tok.encode_special_tokens = False
        row["ids"] = tok.encode(t, add_special_tokens=False).ids
        row["ids_add_special"] = tok.encode(t, add_special_tokens=True).ids
        tok.encode_special_tokens = True
        row["ids_no_special"] = tok.encode(t, add_special_tokens=False).ids
        tok.encode_special_tokens = False
        row["decoded"] = tok.decode(row["ids"], skip_special_tokens=False)
        cases.append(row)
    out[name] = {"json": s, "cases": cases}
out["generator"] = "tokenizers " + __version__
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hf_features.json")
with open(path, "w", encoding="utf-8") as f:
    json.dump(out, f, ensure_ascii=False, indent=0)
    f.write("\n")
