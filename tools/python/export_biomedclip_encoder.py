#!/usr/bin/env python3
"""Export BiomedCLIP (open_clip) as a BioMed-VITAL *encoder* (DESIGN.md section 5, issue 11).

    pip install torch open_clip_torch transformers
    python3 tools/python/export_biomedclip_encoder.py --out biomedclip-encoder [--max-length 256]

Then register the folder (model.onnx, tokenizer.json, encoder.json) with `registerEncoderModel`
(a multipart upload, or `serverPath` under SELECTOR_IMPORT_DIRS) and train selectors over it with
`startTrainingRun`: the service stores each image's and text's embeddings once and trains only the
head (the paper's 1024 -> 512 -> 512 -> 512 -> 1 MLP by default).

NOT run in CI: it needs torch and open_clip and downloads the BiomedCLIP weights (about 800 MB)
from the Hugging Face hub, which the project's machines cannot reach. The service's own tests use
the reference encoder built from code (src/modules/encoders/reference-encoder.ts) instead.

The contract it writes:
  inputs   pixel_values float32 [N, 3, 224, 224], input_ids int64 [N, L], attention_mask int64 [N, L]
  outputs  image_embeds float32 [N, 512], text_embeds float32 [N, 512] (L2-normalised, as the paper's
           selector reads them)
  manifest encoder.json: CLIP preprocessing (resize shortest side, centre crop 224, OpenAI CLIP
           mean/std), the text template, and the two widths.

The head the service trains is joined to this graph (Concat(image_embeds, text_embeds) -> MLP), so
the exported opset must be 13 or later (17 here).
"""
import argparse
import json
import os

import torch
import open_clip

NAME = "hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


class Encoder(torch.nn.Module):
    """The two towers of BiomedCLIP with the encoder contract's inputs and outputs."""

    def __init__(self, clip):
        super().__init__()
        self.clip = clip

    def forward(self, pixel_values, input_ids, attention_mask):
        image = self.clip.encode_image(pixel_values, normalize=True)
        # BiomedCLIP's text tower derives its mask from the pad id (0): multiplying by the mask keeps
        # attention_mask in the graph and zeroes padding the way the service pads.
        text = self.clip.encode_text(input_ids * attention_mask, normalize=True)
        return image, text


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="biomedclip-encoder")
    parser.add_argument("--max-length", type=int, default=256, help="L, tokens per text (BiomedCLIP's context length is 256)")
    parser.add_argument("--fields", default="caption,question,answer", help="text template fields, in order (caption, mentions, question, answer)")
    parser.add_argument("--opset", type=int, default=17)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    clip, _, _ = open_clip.create_model_and_transforms(NAME)
    tokenizer = open_clip.get_tokenizer(NAME)
    encoder = Encoder(clip).eval()
    L = args.max_length
    sample = (torch.zeros(2, 3, 224, 224), torch.zeros(2, L, dtype=torch.long), torch.ones(2, L, dtype=torch.long))
    with torch.no_grad():
        image, text = encoder(*sample)
    torch.onnx.export(
        encoder,
        sample,
        os.path.join(args.out, "model.onnx"),
        input_names=["pixel_values", "input_ids", "attention_mask"],
        output_names=["image_embeds", "text_embeds"],
        dynamic_axes={n: {0: "batch"} for n in ["pixel_values", "input_ids", "attention_mask", "image_embeds", "text_embeds"]},
        opset_version=args.opset,
    )
    # The Hugging Face fast tokenizer behind open_clip's HFTokenizer: writes tokenizer.json.
    tokenizer.tokenizer.save_pretrained(args.out)
    manifest = {
        "contract": "biomed-vital-encoder/v1",
        "description": "BiomedCLIP-PubMedBERT_256-vit_base_patch16_224 image and text towers (open_clip), L2-normalised embeddings.",
        "image": {"size": 224, "resize": "cover", "mean": CLIP_MEAN, "std": CLIP_STD, "alpha": "drop", "exifOrientation": "ignore"},
        "text": {"maxLength": L, "fields": args.fields.split(","), "rounds": "all", "separator": " "},
        "embeddings": {"imageDim": int(image.shape[1]), "textDim": int(text.shape[1])},
    }
    with open(os.path.join(args.out, "encoder.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    print(f"wrote {args.out}/model.onnx, tokenizer.json and encoder.json (image {image.shape[1]}, text {text.shape[1]})")


if __name__ == "__main__":
    main()
