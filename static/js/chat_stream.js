// The chat form, streamed: the reply appears as it is written (the API's server-sent events, the
// same chat_turn_stream service as the API), then the page's own rendering of the finished turn
// (Markdown, "Memories used") replaces it. Enter sends, Shift+Enter starts a new line. Without
// JavaScript, or if fetch streams are missing, the form posts as it always did.
(function () {
  "use strict";
  var form = document.querySelector("form.message-form[data-stream-url]");
  if (!form || !window.fetch || !window.TextDecoder || !window.ReadableStream) return;
  var textarea = form.querySelector("textarea[name=message]");
  var button = form.querySelector("button[type=submit]");

  textarea.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (typeof form.requestSubmit === "function") form.requestSubmit(button);
      else button.click();
    }
  });

  function messageItem(role, label, text) {
    var li = document.createElement("li");
    li.className = "message " + role;
    var meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = label;
    var content = document.createElement("div");
    content.className = "content streaming";
    content.textContent = text;
    li.appendChild(meta);
    li.appendChild(content);
    return li;
  }

  function messagesList() {
    var list = document.querySelector("ol.messages");
    if (!list) {
      list = document.createElement("ol");
      list.className = "messages";
      form.parentNode.insertBefore(list, form);
    }
    return list;
  }

  function showError(message) {
    var error = form.querySelector(".form-error");
    if (!error) {
      error = document.createElement("p");
      error.className = "form-error";
      error.setAttribute("role", "alert");
      form.insertBefore(error, form.firstChild);
    }
    error.textContent = message;
  }

  // Each server-sent event of the stream: {event, data}.
  function parseEvents(buffer, onEvent) {
    var parts = buffer.split("\n\n");
    var rest = parts.pop();
    parts.forEach(function (block) {
      var name = "message", data = "";
      block.split("\n").forEach(function (line) {
        if (line.indexOf("event: ") === 0) name = line.slice(7);
        else if (line.indexOf("data: ") === 0) data += line.slice(6);
      });
      onEvent(name, data ? JSON.parse(data) : {});
    });
    return rest;
  }

  // The finished turn as the page renders it: the whole chat section of the conversation's page.
  function showFinished(conversationId) {
    var url = "/chat/" + conversationId + "/";
    if (!form.dataset.conversation) {
      window.location.assign(url);
      return Promise.resolve();
    }
    return fetch(url, { credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        var page = new DOMParser().parseFromString(html, "text/html");
        var fresh = page.querySelector("section.chat");
        var current = document.querySelector("section.chat");
        if (!fresh || !current) { window.location.assign(url); return; }
        current.replaceWith(document.importNode(fresh, true));
        var again = document.createElement("script");
        again.src = form.dataset.script;
        document.body.appendChild(again);  // wire the new form
      });
  }

  form.addEventListener("submit", function (event) {
    var text = textarea.value.trim();
    if (!text) return;
    event.preventDefault();
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    var body = { message: text, stream: true };
    if (form.dataset.conversation) body.conversation = Number(form.dataset.conversation);
    var temporary = form.querySelector("input[name=temporary]");
    if (temporary && temporary.checked) body.temporary = true;
    var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
    var list = messagesList();
    var reply = null, conversationId = form.dataset.conversation || null, buffer = "";

    fetch(form.dataset.streamUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json, text/event-stream", "X-CSRFToken": csrf },
      body: JSON.stringify(body)
    }).then(function (response) {
      if (!response.ok) {
        return response.json().then(function (payload) {
          throw new Error((payload.error && payload.error.message) || "The message could not be sent.");
        });
      }
      textarea.value = "";
      list.appendChild(messageItem("user", "You", text)).querySelector(".content").classList.remove("streaming");
      reply = list.appendChild(messageItem("assistant", "Assistant · writing…", ""));
      reply.setAttribute("aria-live", "polite");
      var reader = response.body.getReader(), decoder = new TextDecoder();
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) return;
          buffer = parseEvents(buffer + decoder.decode(chunk.value, { stream: true }), function (name, data) {
            if (name === "start") conversationId = data.conversation;
            else if (name === "delta") reply.querySelector(".content").textContent += data.text;
            else if (name === "done") conversationId = data.conversation;
          });
          return pump();
        });
      }
      return pump();
    }).then(function () {
      if (conversationId) return showFinished(conversationId);
    }).catch(function (error) {
      showError(error.message || "The message could not be sent.");
      button.disabled = false;
      form.removeAttribute("aria-busy");
    });
  });
})();
