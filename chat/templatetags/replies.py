"""`{{ message.content|reply_html }}`: an assistant's reply rendered from Markdown, sanitised."""

from django import template

from chat.rendering import reply_html as render_reply

register = template.Library()


@register.filter
def reply_html(text: str):
    return render_reply(text or "")
