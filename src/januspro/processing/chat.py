"""Chat templates of Janus-Pro (roles ``<|User|>``/``<|Assistant|>``) and Janus-1.3B (``User``/``Assistant``).

Both render like DeepSeek's "deepseek" conversation style: an optional system prompt and ``\\n\\n``, then each
turn as ``ROLE: text`` followed by ``\\n\\n`` after a user turn and the end-of-sentence token after an
assistant turn; a final empty assistant turn renders as ``ROLE:`` (the generation prompt). Images appear in
text as ``<image_placeholder>``; the processor expands each into the image slots.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

IMAGE_TAG = "<image_placeholder>"

# The system prompt DeepSeek's processor puts before understanding conversations by default.
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful language and vision assistant. "
    "You are able to understand the visual content that the user provides, "
    "and assist the user with a variety of tasks using natural language."
)


class ConversationError(ValueError):
    """A conversation that cannot be rendered."""


@dataclass(frozen=True)
class ChatTemplate:
    name: str
    user: str
    assistant: str
    sep: str = "\n\n"
    sep2: str = "<｜end▁of▁sentence｜>"

    @property
    def stop_strings(self) -> tuple[str, ...]:
        return (self.user, self.sep2)


TEMPLATES: dict[str, ChatTemplate] = {
    "janus-pro": ChatTemplate("janus-pro", "<|User|>", "<|Assistant|>"),
    "janus-1.3b": ChatTemplate("janus-1.3b", "User", "Assistant"),
}

ImageInput = str | Path | bytes | Image.Image


def get_template(name: str) -> ChatTemplate:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ConversationError(f"unknown chat template {name!r}; choose one of {sorted(TEMPLATES)}") from None


def normalize_messages(messages: list[dict[str, Any]], check_images: bool = True
                       ) -> tuple[str | None, list[tuple[str, str]], list[ImageInput]]:
    """Split a conversation into (system prompt or None, [(role, text)], images in order of appearance).

    A message is ``{"role": "user"|"assistant"|"system", "content": ...}`` where content is a string (images
    marked with ``<image_placeholder>`` and given in ``"images"``) or a list of parts ``{"type": "text",
    "text": ...}`` / ``{"type": "image", "image": path|bytes|PIL.Image}``. ``check_images=False`` skips the
    per-message tag/image count check (for records that list their images once, as training data does).
    """
    system: str | None = None
    turns: list[tuple[str, str]] = []
    images: list[ImageInput] = []
    for k, msg in enumerate(messages):
        if not isinstance(msg, dict) or "role" not in msg:
            raise ConversationError(f"message {k} must be a dict with a 'role'")
        role = str(msg["role"]).lower()
        content = msg.get("content", "")
        if isinstance(content, str):
            text = content
            msg_images = list(msg.get("images") or [])
            if check_images and text.count(IMAGE_TAG) != len(msg_images):
                raise ConversationError(f"message {k} has {text.count(IMAGE_TAG)} {IMAGE_TAG} tag(s) but "
                                        f"{len(msg_images)} image(s)")
        elif isinstance(content, list):
            pieces: list[str] = []
            msg_images = []
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "text":
                    pieces.append(str(part.get("text", "")))
                elif kind == "image":
                    pieces.append(IMAGE_TAG)
                    msg_images.append(part["image"])
                else:
                    raise ConversationError(f"message {k}: unknown content part {part!r}")
            # an image part stands on its own line, as the official examples write "<image_placeholder>\n..."
            text = ""
            for i, piece in enumerate(pieces):
                if i > 0:
                    text += "\n" if (piece == IMAGE_TAG or pieces[i - 1] == IMAGE_TAG) else " "
                text += piece
        else:
            raise ConversationError(f"message {k}: content must be a string or a list of parts")
        if role == "system":
            if turns or system is not None:
                raise ConversationError("a system message may only come first")
            system = text
            continue
        if role not in ("user", "assistant"):
            raise ConversationError(f"message {k}: role must be user, assistant or system, not {role!r}")
        expected = "user" if len(turns) % 2 == 0 else "assistant"
        if role != expected:
            raise ConversationError(f"message {k}: expected a {expected} turn (turns alternate, user first)")
        turns.append((role, text))
        images.extend(msg_images)
    return system, turns, images


def render(turns: list[tuple[str, str]], template: ChatTemplate, system_prompt: str = "",
           add_generation_prompt: bool = True) -> str:
    """Render alternating (role, text) turns, user first, into the prompt string."""
    seps = (template.sep, template.sep2)
    rows = list(turns)
    if add_generation_prompt and (not rows or rows[-1][0] == "user"):
        rows.append(("assistant", ""))
    out = system_prompt + seps[0] if system_prompt else ""
    for i, (role, text) in enumerate(rows):
        name = template.user if role == "user" else template.assistant
        text = text.strip()
        out += f"{name}: {text}{seps[i % 2]}" if text else f"{name}:"
    return out.strip()


def format_conversation(messages: list[dict[str, Any]], template: str = "janus-pro", system_prompt: str | None = None,
                        add_generation_prompt: bool = True) -> tuple[str, list[ImageInput]]:
    """Prompt string and images for a conversation.

    ``system_prompt``: None uses the conversation's system message if it has one, else DeepSeek's default
    understanding prompt; "" means none.
    """
    system, turns, images = normalize_messages(messages)
    if system_prompt is None:
        system_prompt = system if system is not None else DEFAULT_SYSTEM_PROMPT
    return render(turns, get_template(template), system_prompt, add_generation_prompt), images


def generation_prompt(prompt: str, template: str = "janus-pro") -> str:
    """The text-to-image prompt (no system prompt), ending where ``<begin_of_image>`` follows."""
    return render([("user", prompt)], get_template(template), "", True)
