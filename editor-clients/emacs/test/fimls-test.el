;;; fimls-test.el --- Tests of fimls.el against the real fimls server  -*- lexical-binding: t; -*-

;; SPDX-License-Identifier: Apache-2.0

;;; Commentary:

;; Run by test/run in an interactive Emacs on a pseudo-terminal (`emacs -nw'),
;; after the README's configuration.  The tests run inside a command, and
;; `fimls-test--wait' enters a recursive edit: queued key events
;; (`unread-command-events') go through Emacs's own command loop, so
;; keymaps, `pre-command-hook', `post-command-hook' and idle timers work as
;; they do when a user types.  Results go to the file named by the
;; environment variable FIMLS_TEST_RESULTS, one line per test.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'subr-x)
(require 'fimls)

(defvar fimls-test-dir (getenv "FIMLS_TEST_DIR")
  "Temporary directory of this run (made by test/run).")

(defvar fimls-test-results (getenv "FIMLS_TEST_RESULTS")
  "File the results are written to.")

(defvar fimls-test-file nil "The Python file the tests edit.")

;; On top of the README's settings: no time budget for a block, so that what the
;; model writes (and so the file the later tests see) does not depend on the
;; machine's load.
(setq fimls-settings (append fimls-settings '(:cache (:timeBudgetMs 0))))

(defvar fimls-test--answers 0 "Answers to inline completion requests so far.")
(advice-add 'fimls--on-answer :after
            (lambda (&rest _) (setq fimls-test--answers (1+ fimls-test--answers))))

(defconst fimls-test--source
  "\"\"\"Helpers for the fimls Emacs tests: café, naïve, 😀.\"\"\"
import math


def scale(values, factor):
    return [v * factor for v in values]


def circle_area(radius):
    return math.pi * radius ** 2


def untidy(x):
return x
"
  "Initial text of the test file.  `untidy' is indented by a test with TAB.")

;;;; Driving the command loop

(defun fimls-test--wait (pred timeout)
  "Run the command loop until the queued keys are done and PRED holds.
Give up after TIMEOUT seconds.  Return PRED's last value."
  (let* ((deadline (+ (float-time) timeout))
         (check (lambda ()
                  (and (null unread-command-events)
                       (or (ignore-errors (funcall pred))
                           (> (float-time) deadline)))))
         (timer (run-with-timer 0.05 0.05
                                (lambda ()
                                  (when (funcall check)
                                    (exit-recursive-edit))))))
    (unwind-protect
        (recursive-edit)
      (cancel-timer timer))
    (ignore-errors (funcall pred))))

(defun fimls-test--keys (&rest keys)
  "Queue KEYS: strings typed literally, or key descriptions in vectors.
E.g. (fimls-test--keys \"def f():\" [\"RET\"])."
  (dolist (key keys)
    (setq unread-command-events
          (append unread-command-events
                  (if (stringp key)
                      (string-to-list key)
                    (listify-key-sequence (kbd (aref key 0))))))))

(defun fimls-test--type (timeout &rest keys)
  "Queue KEYS and run the command loop until they are done (at most TIMEOUT s)."
  (apply #'fimls-test--keys keys)
  (fimls-test--wait (lambda () t) timeout))

(defun fimls-test--overlay ()
  "The overlay showing the current suggestion, found in the buffer."
  (cl-find-if (lambda (o) (overlay-get o 'fimls))
              (overlays-in (point-min) (point-max))))

(defun fimls-test--ghost ()
  "The ghost text on display at point, or nil."
  (let ((overlay (fimls-test--overlay)))
    (when (and overlay (= (overlay-start overlay) (point)))
      (substring-no-properties (overlay-get overlay 'after-string)))))

(defun fimls-test--wait-ghost (&optional timeout)
  "Wait for ghost text at point (TIMEOUT seconds, default 60); return it.
Stop early when the server answered the latest request with nothing."
  (let ((answers fimls-test--answers))
    (fimls-test--wait (lambda ()
                        (or (fimls-test--ghost)
                            (and (> fimls-test--answers answers)
                                 (null fimls--request)
                                 (null fimls--timer))))
                      (or timeout 60))
    (fimls-test--ghost)))

(defun fimls-test--server ()
  "The fimls server of the test buffer."
  (with-current-buffer (get-file-buffer fimls-test-file) (fimls--server)))

(defun fimls-test--stats ()
  "The server's `fimls/stats'."
  (jsonrpc-request (fimls-test--server) :fimls/stats (make-hash-table)))

(defun fimls-test--acceptances ()
  "The `acceptances' counters of `fimls/stats', as (TOTAL FULL PARTIAL CHARS)."
  (let ((a (plist-get (fimls-test--stats) :acceptances)))
    (list (plist-get a :total) (plist-get a :full)
          (plist-get a :partial) (plist-get a :chars))))

(defun fimls-test--buffer ()
  "Show the test file in the selected window, with point at its end."
  (find-file fimls-test-file)
  (delete-other-windows)
  (goto-char (point-max)))

(defun fimls-test--ready ()
  "Open the test file, let eglot connect, and wait until fimls is ready."
  (fimls-test--buffer)
  (unless (fimls--server)
    ;; `eglot-ensure' connects after the next command.
    (fimls-test--type 5 ["C-l"]))
  (should (fimls-test--wait
           (lambda () (equal (plist-get (fimls--status) :state) "ready"))
           90)))

(defun fimls-test--new-function (header)
  "Type a new function HEADER and RET at the end of the file, after 2 blank lines."
  (fimls-test--buffer)
  (skip-chars-backward " \t\n")
  (delete-region (point) (point-max))
  (insert "\n\n\n")
  (fimls-test--type 10 header ["RET"]))

(defmacro fimls-test--with-answers (bindings &rest body)
  "Run BODY with `completing-read' and `y-or-n-p' answering as a user would.
BINDINGS: (CHOICE-REGEXP PROMPTS-VAR): `completing-read' picks the
first candidate matching CHOICE-REGEXP; the prompts of `y-or-n-p',
answered yes, are pushed onto PROMPTS-VAR."
  (declare (indent 1))
  (let ((regexp (car bindings)) (prompts (cadr bindings)))
    `(cl-letf (((symbol-function 'completing-read)
                (lambda (_prompt collection &rest _)
                  (let ((names (all-completions "" collection)))
                    (or (cl-find-if (lambda (name) (string-match-p ,regexp name)) names)
                        (error "No choice matches %s in %S" ,regexp names)))))
               ((symbol-function 'y-or-n-p)
                (lambda (prompt) (push prompt ,prompts) t)))
       ,@body)))

(defun fimls-test--lines () (split-string (buffer-string) "\n"))

;;;; Tests

(ert-deftest fimls-01-connect-and-status ()
  "Eglot starts fimls from the README's configuration; the mode line shows ready."
  (fimls-test--ready)
  (let ((server (fimls--server)))
    (should (cl-typep server 'fimls-server))
    (should fimls-mode)
    (should (equal (eglot-initialization-options server) fimls-settings))
    (should (equal (plist-get (eglot--server-info server) :name) "fimls"))
    (should (plist-member (eglot--capabilities server) :inlineCompletionProvider))
    ;; The server knows we show inline completions: no completion fallback.
    (should-not (plist-get (eglot--capabilities server) :completionProvider)))
  (should (fimls-test--wait
           (lambda () (string-match-p " fimls:ready"
                                      (format-mode-line mode-line-format)))
           30))
  (should (string-match-p "ready" (fimls-status))))

(ert-deftest fimls-02-tab-indents-without-suggestion ()
  "With no suggestion shown, TAB does what it does without fimls: indent."
  (fimls-test--ready)
  (goto-char (point-min))
  (should (re-search-forward "^return x$"))
  (beginning-of-line)
  (fimls-test--type 5 ["C-l"])          ; a command: whatever was shown is gone
  (should-not (fimls-test--ghost))
  (should-not fimls--active)
  (let ((commands nil))
    (cl-flet ((record () (push this-command commands)))
      (add-hook 'post-command-hook #'record nil t)
      (unwind-protect (fimls-test--type 5 ["TAB"])
        (remove-hook 'post-command-hook #'record t)))
    ;; (The hook also runs with no command when the recursive edit starts.)
    (should (equal (remq nil commands) '(indent-for-tab-command))))
  (should (equal (buffer-substring (line-beginning-position) (line-end-position))
                 "    return x")))

(ert-deftest fimls-03-suggestion-and-tab-accept ()
  "Typing shows ghost text; TAB inserts exactly it; the acceptance is counted."
  (fimls-test--ready)
  (let ((counts (fimls-test--acceptances)))
    (fimls-test--new-function "def is_even(n):")
    (let* ((ghost (fimls-test--wait-ghost))
           (before (buffer-string))
           (at (point)))
      (should (stringp ghost))
      (should (string-match-p "[^ \t\n]" ghost))
      (should fimls--active)
      (should (eq (lookup-key fimls-active-mode-map (kbd "TAB")) #'fimls-accept))
      (fimls-test--type 5 ["TAB"])
      (should (equal (buffer-string)
                     (concat (substring before 0 (1- at)) ghost
                             (substring before (1- at)))))
      (should (= (point) (+ at (length ghost))))
      (should-not (equal (fimls-test--ghost) ghost)))
    (pcase-let ((`(,total ,full ,partial ,chars) counts)
                (`(,total2 ,full2 ,partial2 ,chars2) (fimls-test--acceptances)))
      (should (= total2 (1+ total)))
      (should (= full2 (1+ full)))
      (should (= partial2 partial))
      (should (> chars2 chars)))))

(ert-deftest fimls-04-accept-word-and-line ()
  "M-f and C-e insert a prefix of the suggestion and keep the rest shown."
  (fimls-test--ready)
  (let ((counts (fimls-test--acceptances)))
    (fimls-test--new-function "def average(numbers):")
    (let* ((ghost (fimls-test--wait-ghost))
           (before (buffer-string))
           (at (point)))
      (should (string-match-p "\\w+\\W+\\w" ghost)) ; at least two words
      (fimls-test--type 5 ["M-f"])
      (let* ((word (buffer-substring at (point)))
             (rest (fimls-test--ghost)))
        (should (> (length word) 0))
        (should (string-prefix-p word ghost))
        (should (< (length word) (length ghost)))
        (should (string-match-p "\\w\\'" word))
        (should (equal rest (substring ghost (length word))))
        (should (equal (buffer-string)
                       (concat (substring before 0 (1- at)) word
                               (substring before (1- at)))))
        (pcase-let ((`(,total ,_ ,partial ,chars) counts)
                    (`(,total2 ,_ ,partial2 ,chars2) (fimls-test--acceptances)))
          (should (= total2 (1+ total)))
          (should (= partial2 (1+ partial)))
          (should (= chars2 (+ chars (length word)))))
        ;; C-e: the rest of the suggestion's line.
        (let ((at2 (point)))
          (fimls-test--type 5 ["C-e"])
          (let ((line (buffer-substring at2 (point))))
            (should (string-prefix-p line rest))
            (should-not (string-match-p "\n" (string-trim-left line "\n")))
            (if (< (length line) (length rest))
                (should (equal (fimls-test--ghost) (substring rest (length line))))
              (should-not fimls--active))))))))

(ert-deftest fimls-05-dismiss-next-and-type-through ()
  "Other commands and C-g dismiss; M-] asks again; typing the ghost keeps it."
  (fimls-test--ready)
  (fimls-test--new-function "def clamp(value, low, high):")
  (let ((ghost (fimls-test--wait-ghost)))
    (should ghost)
    ;; Typing the suggestion's first character keeps the rest on screen.
    (let ((first (substring ghost 0 1))
          (text (buffer-string)))
      (when (string-match-p "[[:graph:]]" first)
        (fimls-test--type 5 first)
        (should (equal (fimls-test--ghost) (substring ghost 1)))
        (should (equal (buffer-string)
                       (concat (substring text 0 (1- (- (point) 1))) first
                               (substring text (1- (- (point) 1))))))))
    ;; Another command (backward-char) dismisses it.
    (let ((text (buffer-string)))
      (fimls-test--type 5 ["C-b"])
      (should-not (fimls-test--overlay))
      (should-not fimls--active)
      (should (equal (buffer-string) text))))
  ;; M-] asks explicitly, C-g dismisses without touching the text.
  (fimls-test--type 5 ["C-f"])
  (fimls-test--keys ["M-]"])
  (should (fimls-test--wait-ghost))
  (let ((text (buffer-string)))
    (fimls-test--type 5 ["C-g"])
    (should-not (fimls-test--overlay))
    (should (equal (buffer-string) text))
    ;; Without a suggestion, C-e is `move-end-of-line' again.
    (should-not (eq (key-binding (kbd "C-e")) #'fimls-accept-line))))

(ert-deftest fimls-06-utf16-position ()
  "The position sent counts UTF-16 units: the server's cursor is right after emoji."
  (fimls-test--ready)
  (fimls-test--new-function "def greet(name):")
  (fimls-test--type 5 "message = \"héllo 😀, \" + str(")
  (let* ((line (buffer-substring-no-properties (line-beginning-position) (point)))
         (params (fimls--position-params))
         (prompt (jsonrpc-request (fimls--server) :fimls/prompt params :timeout 30))
         (text (mapconcat (lambda (s) (plist-get s :text)) (plist-get prompt :segments) "")))
    ;; The emoji is one character but two UTF-16 code units.
    (should (= (plist-get (plist-get params :position) :character)
               (+ (length line) 1)))
    ;; The server's cursor is where Emacs's is: right after "str(".
    (should (string-match-p (concat (regexp-quote (string-trim line))
                                    "<|fim_suffix|>[^(]")
                            text)))
  (let* ((ghost (fimls-test--wait-ghost))
         (before (buffer-string))
         (at (point)))
    (should ghost)
    (fimls-test--type 5 ["TAB"])
    (should (equal (buffer-string)
                   (concat (substring before 0 (1- at)) ghost (substring before (1- at)))))))

(ert-deftest fimls-07-code-action-docstring ()
  "`eglot-code-actions' lists \"Add docstring\"; picking it inserts one after the def."
  (fimls-test--ready)
  (goto-char (point-min))
  (should (re-search-forward "^def scale(values, factor):$"))
  (beginning-of-line)
  (let* ((titles (mapcar (lambda (a) (plist-get a :title))
                         (eglot-code-actions (point) (point))))
         (before (fimls-test--lines))
         (prompts nil))
    (should (cl-some (lambda (title) (string-match-p "\\`Add docstring" title)) titles))
    (fimls-test--with-answers ("\\`Add docstring" prompts)
      (let ((last-nonmenu-event ?\r))
        (call-interactively #'eglot-code-actions))
      (should (fimls-test--wait (lambda () (not (equal (fimls-test--lines) before))) 90)))
    (let* ((after (fimls-test--lines))
           (def (cl-position "def scale(values, factor):" after :test #'equal))
           (doc-start (1+ def))
           (doc-end (cl-loop for i from doc-start below (length after)
                             for quotes = (cl-loop for j from doc-start to i
                                                   sum (fimls-test--triple-quotes (nth j after)))
                             when (>= quotes 2) return i)))
      (should (string-match-p "\\`    [rRuU]?\"\"\"" (nth doc-start after)))
      (should doc-end)
      ;; Nothing else changed.
      (should (equal (append (cl-subseq after 0 doc-start) (nthcdr (1+ doc-end) after))
                     before)))))

(defun fimls-test--triple-quotes (line)
  "Number of triple quotes in LINE."
  (let ((count 0) (start 0))
    (while (string-match "\"\"\"\\|'''" line start)
      (setq count (1+ count) start (match-end 0)))
    count))

(defun fimls-test--function-bounds (name)
  "Region of the top-level function NAME: from its def to the next blank line."
  (goto-char (point-min))
  (re-search-forward (format "^def %s(" (regexp-quote name)))
  (let ((beg (line-beginning-position)))
    (cons beg (if (re-search-forward "^$" nil t) (point) (point-max)))))

(ert-deftest fimls-08-rewrite-from-eglot-menu ()
  "\"Rewrite selection...\" from eglot's menu asks for the instruction and applies the edit."
  (fimls-test--ready)
  (pcase-let* ((`(,beg . ,end) (fimls-test--function-bounds "circle_area"))
               (before-text (buffer-substring beg end))
               (prefix (buffer-substring (point-min) beg))
               (suffix (buffer-substring end (point-max)))
               (prompts nil))
    (goto-char beg)
    (set-mark end)
    (activate-mark)
    (fimls-test--with-answers ("\\`Rewrite" prompts)
      (define-key global-map (kbd "C-c f a") #'eglot-code-actions)
      ;; The instruction is typed into the minibuffer.
      (fimls-test--keys ["C-c f a"] "add type hints" ["RET"])
      (should (fimls-test--wait
               (lambda () (not (equal (buffer-substring-no-properties
                                       beg (min (point-max) (+ beg (length before-text))))
                                      before-text)))
               90)))
    (deactivate-mark)
    (should (equal (car fimls-rewrite-history) "add type hints"))
    ;; Only the selection changed.
    (let ((text (buffer-substring-no-properties (point-min) (point-max))))
      (should (string-prefix-p prefix text))
      (should (string-suffix-p suffix text))
      (should (string-match-p "def circle_area("
                              (substring text (length prefix)
                                         (- (length text) (length suffix))))))))

(ert-deftest fimls-09-fimls-rewrite-command ()
  "M-x fimls-rewrite rewrites the definition at point as instructed."
  (fimls-test--ready)
  (pcase-let* ((`(,beg . ,end) (fimls-test--function-bounds "is_even"))
               (before-text (buffer-substring beg end))
               (prefix (buffer-substring (point-min) beg))
               (prompts nil))
    (goto-char (1+ beg))
    (deactivate-mark)
    (define-key global-map (kbd "C-c f r") #'fimls-rewrite)
    (fimls-test--with-answers ("\\`never" prompts)
      (fimls-test--keys ["C-c f r"] "add a type hint to n" ["RET"])
      (should (fimls-test--wait
               (lambda () (not (equal (buffer-substring-no-properties
                                       beg (min (point-max) (+ beg (length before-text))))
                                      before-text)))
               90)))
    (should (equal (buffer-substring (point-min) beg) prefix))
    (should (string-prefix-p "def is_even("
                             (buffer-substring-no-properties
                              beg (min (point-max) (+ beg 300)))))))

(ert-deftest fimls-10-stats-buffer ()
  "M-x fimls-stats shows the server's counters, acceptances included."
  (fimls-test--ready)
  (fimls-test--type 10 ["M-x"] "fimls-stats" ["RET"])
  (let ((stats (get-buffer "*fimls stats*")))
    (should stats)
    (with-current-buffer stats
      (goto-char (point-min))
      (should (re-search-forward "^acceptances:$" nil t))
      (should (re-search-forward "^  total: \\([0-9]+\\)$" nil t))
      (should (>= (string-to-number (match-string 1)) 3))
      (goto-char (point-min))
      (should (re-search-forward "^state: " nil t)))))

(ert-deftest fimls-11-buffer-without-file ()
  "A buffer that is not a file: fimls-mode stays quiet, TAB is TAB."
  (let ((buffer (get-buffer-create "*fimls scratch*")))
    (unwind-protect
        (progn
          (switch-to-buffer buffer)
          (python-mode)
          (fimls-mode 1)
          (should (equal (fimls--mode-line) " fimls:-"))
          (fimls-test--type 5 "def f(x):" ["RET"] "return x")
          (fimls-test--wait (lambda () nil) 1)
          (should-not (fimls-test--overlay))
          (should (equal (buffer-string) "def f(x):\n    return x")))
      (kill-buffer buffer))))

(ert-deftest fimls-12-missing-server-program ()
  "A missing server program is one clear error, naming `fimls-command'."
  (let ((fimls-command '("fimls-no-such-program" "--stdio")))
    (let ((err (should-error (fimls--contact nil) :type 'user-error)))
      (should (string-match-p "fimls-command" (cadr err)))))
  ;; Interactively, eglot gets the contact and asks the user itself.
  (let ((fimls-command '("fimls-no-such-program" "--stdio")))
    (should (equal (fimls--contact t) '(fimls-server "fimls-no-such-program" "--stdio")))))

(ert-deftest fimls-13-server-exit ()
  "When the server dies, fimls goes quiet; eglot reconnects and fimls is ready again."
  (fimls-test--ready)
  (let ((server (fimls--server)))
    (signal-process (process-id (jsonrpc--process server)) 'SIGKILL)
    ;; Eglot notices and, as the connection had lasted, starts a new server.
    (should (fimls-test--wait (lambda () (not (eq (fimls--server) server))) 30))
    (fimls-test--buffer)
    (should (fimls-test--wait
             (lambda ()
               (and (fimls--server)
                    (equal (plist-get (fimls--status) :state) "ready")))
             90))
    (should-not (eq (fimls--server) server))
    (should fimls-mode)
    (should (equal (fimls--mode-line) " fimls:ready"))))

(ert-deftest fimls-14-second-language ()
  "The same server manages a JavaScript file, sent with its own language id."
  (fimls-test--ready)
  (let* ((server (fimls--server))
         (file (expand-file-name "util.js" (file-name-directory fimls-test-file))))
    (with-temp-file file (insert "function add(a, b) {\n  return a + b;\n}\n"))
    (find-file file)
    (unwind-protect
        (progn
          (should (eq major-mode 'js-mode))
          (should (fimls-test--wait #'fimls--server 10))
          (should (eq (fimls--server) server))
          (should fimls-mode)
          ;; What eglot sends in textDocument/didOpen.
          (should (equal (plist-get (eglot--TextDocumentItem) :languageId) "javascript")))
      (kill-buffer (current-buffer)))))

;;;; Running

(defun fimls-test--write (line)
  "Append LINE to the results file."
  (write-region (concat line "\n") nil fimls-test-results 'append 'silent))

(defun fimls-test-run ()
  "Run the tests, write their results, save the logs and exit Emacs."
  (interactive)
  (let ((failed 0))
    (dolist (test (sort (ert-select-tests "\\`fimls-[0-9]" t)
                        (lambda (a b) (string< (ert-test-name a) (ert-test-name b)))))
      (let* ((start (float-time))
             (result (ert-run-test test))
             (seconds (- (float-time) start))
             (name (symbol-name (ert-test-name test))))
        (if (ert-test-passed-p result)
            (fimls-test--write (format "ok %s (%.1f s)" name seconds))
          (cl-incf failed)
          (fimls-test--write
           (format "FAIL %s (%.1f s): %s" name seconds
                   (string-replace
                    "\n" " "
                    (truncate-string-to-width
                     (format "%S" (and (ert-test-result-with-condition-p result)
                                       (ert-test-result-with-condition-condition result)))
                     1500)))))))
    ;; Logs for a failing run.
    (with-current-buffer (messages-buffer)
      (write-region nil nil (expand-file-name "messages.log" fimls-test-dir) nil 'silent))
    (when-let ((server (ignore-errors (fimls-test--server))))
      (with-current-buffer (jsonrpc-events-buffer server)
        (write-region nil nil (expand-file-name "events.log" fimls-test-dir) nil 'silent))
      (ignore-errors (eglot-shutdown server)))
    (fimls-test--write "done")
    (kill-emacs (if (> failed 0) 1 0))))

(defun fimls-test-main ()
  "Create the test project, then run the tests from the command loop."
  (let ((project (expand-file-name "project" fimls-test-dir)))
    (make-directory (expand-file-name ".git" project) t)
    (setq fimls-test-file (expand-file-name "main.py" project))
    (with-temp-file fimls-test-file (insert fimls-test--source))
    (write-region (format "%d\n" (emacs-pid)) nil
                  (expand-file-name "emacs.pid" fimls-test-dir) nil 'silent)
    (add-hook 'eglot-server-initialized-hook
              (lambda (server)
                (write-region (format "%s\n" (process-id (jsonrpc--process server)))
                              nil (expand-file-name "server.pid" fimls-test-dir)
                              'append 'silent)))
    (define-key global-map [fimls-test-run] #'fimls-test-run)
    (setq unread-command-events (list 'fimls-test-run))))

(provide 'fimls-test)
;;; fimls-test.el ends here
