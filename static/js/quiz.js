// Progressive enhancement for the quiz pages: every page works without this file.
// - a countdown when the attempt has a time limit (the server enforces the deadline);
// - keys 1-9 pick an answer and Enter submits it (focus in the form), Enter on the
//   feedback goes to the next question;
// - focus moves to the feedback heading so screen readers announce the result;
// - admin forms marked data-confirm ask before archiving or disabling.
(function () {
  "use strict";

  function startCountdown(timer) {
    var left = parseInt(timer.getAttribute("data-countdown"), 10);
    var value = timer.querySelector(".timer-value");
    if (isNaN(left) || left <= 0 || !value) {
      return;
    }
    var deadline = Date.now() + left * 1000;
    function render() {
      var seconds = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      var minutes = Math.floor(seconds / 60);
      var rest = seconds % 60;
      value.textContent = minutes + " min " + (rest < 10 ? "0" : "") + rest + " s";
      timer.classList.toggle("timer-low", seconds <= 60);
      if (seconds === 60) {
        timer.setAttribute("role", "alert");
      }
      if (seconds === 0) {
        window.clearInterval(handle);
        // Past the deadline the server shows "time is up"; wait a moment for clock skew.
        window.setTimeout(function () {
          window.location.assign(timer.getAttribute("data-reload"));
        }, 750);
      }
    }
    var handle = window.setInterval(render, 250);
    render();
  }

  // Shortcuts act only while focus is inside the answer form (or on the feedback
  // heading), so single keys never fire elsewhere on the page (WCAG 2.1.4).
  function enableShortcuts() {
    var form = document.querySelector("[data-answer-form]");
    if (form) {
      form.addEventListener("keydown", function (event) {
        if (event.altKey || event.ctrlKey || event.metaKey) {
          return;
        }
        if (/^[1-9]$/.test(event.key)) {
          var inputs = form.querySelectorAll("input[name=choice]");
          var input = inputs[parseInt(event.key, 10) - 1];
          if (input) {
            event.preventDefault();
            input.checked = input.type === "checkbox" ? !input.checked : true;
            input.focus();
          }
        } else if (event.key === "Enter" && event.target.tagName === "INPUT") {
          event.preventDefault();
          form.requestSubmit ? form.requestSubmit() : form.submit();
        }
      });
      var first = form.querySelector("input[name=choice]");
      if (first && !document.querySelector("[data-focus]")) {
        first.focus();
      }
    }
    var next = document.querySelector("[data-next]");
    var heading = document.querySelector("[data-focus]");
    if (next && heading) {
      heading.addEventListener("keydown", function (event) {
        if (event.key === "Enter") {
          event.preventDefault();
          next.click();
        }
      });
    }
  }

  // Forms marked data-confirm ask before they submit (archive, disable).
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });

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
    // Lets styles and browser tests know the enhancements are active.
    document.documentElement.setAttribute("data-enhanced", "");
  });
})();
