// Sign-up: fill the hidden time zone field with the browser's IANA zone (the server keeps UTC without it).
document.querySelectorAll("input[data-detect-time-zone]").forEach(function (input) {
  try {
    input.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch (error) {
    input.value = "UTC";
  }
});
