"""Ordinary Django views, sync and async."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.utils.html import escape
from django.views.decorators.csrf import csrf_exempt


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<!doctype html><html><body><h1>Django on Levante</h1></body></html>")


def hello(request: HttpRequest, name: str) -> HttpResponse:
    return HttpResponse(f"<p>Hello, {escape(name)}!</p>")


@csrf_exempt
def echo_form(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "POST"})
    fields = {key: request.POST.getlist(key) for key in request.POST}
    return JsonResponse({"fields": fields, "content_type": request.content_type})


def info(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "method": request.method,
            "path": request.path,
            "query": request.GET.dict(),
            "host": request.get_host(),
            "secure": request.is_secure(),
            "user_agent": request.headers.get("user-agent", ""),
        }
    )


async def async_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"async": True, "n": int(request.GET.get("n", "0")) + 1})


def protected_form(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return HttpResponse(f"<p>Thanks, {escape(request.POST.get('name', ''))}</p>")
    token = get_token(request)
    return HttpResponse(
        '<form method="post">'
        f'<input type="hidden" name="csrfmiddlewaretoken" value="{token}">'
        '<input name="name"><button>Send</button></form>'
    )
