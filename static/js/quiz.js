// Progressive enhancement for the quiz pages: every page works without this file.
// - a countdown when the attempt has a time limit (the server enforces the deadline);
// - keys 1-9 pick an answer, Enter submits it, and Enter on feedback goes to the next question;
// - focus moves to the feedback heading so screen readers announce the result.
(function () {
  "use strict";

  function startCountdown(timer) {
    var left = parseInt(timer.getAttribute("data-countdown"), 10);
    var value = timer.querySelector(".timer-value");
    if (isNaN(left) || !value) {
      return;
    }
    var deadline = Date.now() + left * 1000;
    function render() {
      var seconds = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      var minutes = Math.floor(seconds / 60);
      var rest = seconds % 60;
      value.textContent = minutes + " min " + (rest < 10 ? "0" : "") + rest + " s";
      timer.classList.toggle("timer-low", seconds <= 60);
      if (seconds === 60) {
        timer.setAttribute("role", "alert");
      }
      if (seconds === 0) {
        window.clearInterval(handle);
        window.location.assign(timer.getAttribute("data-reload"));
      }
    }
    var handle = window.setInterval(render, 1000);
    render();
  }

  function isTyping(target) {
    var tag = target && target.tagName;
    return tag === "TEXTAREA" || (tag === "INPUT" && /^(text|email|password|search|number)$/.test(target.type));
  }

  function enableShortcuts() {
    var form = document.querySelector("[data-answer-form]");
    var next = document.querySelector("[data-next]");
    document.addEventListener("keydown", function (event) {
      if (event.altKey || event.ctrlKey || event.metaKey || isTyping(event.target)) {
        return;
      }
      if (form && /^[1-9]$/.test(event.key)) {
        var inputs = form.querySelectorAll("input[name=choice]");
        var input = inputs[parseInt(event.key, 10) - 1];
        if (input) {
          event.preventDefault();
          input.checked = input.type === "checkbox" ? !input.checked : true;
          input.focus();
        }
      } else if (event.key === "Enter") {
        if (form && event.target.tagName !== "BUTTON") {
          event.preventDefault();
          form.requestSubmit ? form.requestSubmit() : form.submit();
        } else if (!form && next && !/^(A|BUTTON|SUMMARY)$/.test(event.target.tagName)) {
          event.preventDefault();
          next.click();
        }
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var timer = document.querySelector("[data-countdown]");
    if (timer) {
      startCountdown(timer);
    }
    enableShortcuts();
    var focusTarget = document.querySelector("[data-focus]");
    if (focusTarget) {
      focusTarget.focus();
    }
  });
})();
