"""Pairs made with plain constructors, with whatever text a test needs (hostile, Chinese, Markdown)."""

import uuid

from annotation.models import Pair, Prompt, Response


def make_pair(dataset, query, chosen, rejected, *, domain="chat", system="", history=(), chosen_model="",
              rejected_model="", status="pending", status_reason="", chosen_score=None, rejected_score=None,
              origin="imported"):
    messages = ([{"role": "system", "content": system}] if system else []) + list(history)
    messages.append({"role": "user", "content": query})
    prompt = Prompt.objects.create(dataset=dataset, domain=domain, messages=messages, query=query,
                                   content_hash=uuid.uuid4())
    good = Response.objects.create(dataset=dataset, prompt=prompt, model=chosen_model, text=chosen,
                                   content_hash=uuid.uuid4())
    bad = Response.objects.create(dataset=dataset, prompt=prompt, model=rejected_model, text=rejected,
                                  content_hash=uuid.uuid4())
    return Pair.objects.create(dataset=dataset, prompt=prompt, domain=domain, chosen=good, rejected=bad,
                               status=status, status_reason=status_reason, chosen_score=chosen_score,
                               rejected_score=rejected_score, origin=origin)


def response_for(pair, text, model=""):
    """Another response to the pair's prompt."""
    return Response.objects.create(dataset=pair.dataset, prompt=pair.prompt, model=model, text=text,
                                   content_hash=uuid.uuid4())
