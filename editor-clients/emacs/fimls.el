;;; fimls.el --- Local AI code completion (ghost text) with eglot and fimls  -*- lexical-binding: t; -*-

;; Copyright (C) 2025 The fimls authors
;; SPDX-License-Identifier: Apache-2.0

;; Author: The fimls authors
;; Version: 0.1.0
;; Package-Requires: ((emacs "28.1") (eglot "1.9"))
;; Keywords: convenience, languages, tools

;;; Commentary:

;; fimls is a local language server that completes code with a small
;; model running on your machine.  This package connects it to Emacs
;; through eglot:
;;
;; - it registers fimls in `eglot-server-programs' for the major modes
;;   fimls knows (`fimls-major-modes'), started as `fimls-command' with
;;   `fimls-settings' as its initialization options;
;;
;; - `fimls-mode' (or `global-fimls-mode' for every buffer eglot manages
;;   with fimls) asks the server for an inline completion when you pause
;;   after typing, and shows it as ghost text at point.  While a
;;   suggestion is shown, TAB accepts it, M-f / C-<right> accept its
;;   next word, C-e / M-<right> its current line, C-g dismisses it and
;;   M-] asks for another one (M-] also asks for one when none is
;;   shown).  Any other command dismisses it; elsewhere TAB keeps its
;;   usual meaning.  The keys are in `fimls-active-mode-map';
;;
;; - the mode line shows the server's state (" fimls:ready", "busy",
;;   "loading", "error"); `fimls-status' and `fimls-stats' tell more;
;;
;; - fimls's code actions (docstring, fix, explain, tests, rewrite) work
;;   through `eglot-code-actions'.  "Rewrite selection..." needs an
;;   instruction: eglot's menu asks for it, and so does `fimls-rewrite'.
;;
;; Minimal set-up:
;;
;;   (require 'fimls)
;;   (global-fimls-mode 1)
;;   (add-hook 'python-mode-hook #'eglot-ensure)
;;
;; Eglot manages one server per buffer: in the modes of
;; `fimls-major-modes', fimls takes the place of the language's usual
;; server.

;;; Code:

(require 'cl-lib)
(require 'subr-x)
(require 'eglot)
(require 'jsonrpc)


;;;; Customization

(defgroup fimls nil
  "Local AI code completion from the fimls language server."
  :group 'eglot
  :group 'convenience
  :prefix "fimls-")

(defcustom fimls-command '("fimls" "--stdio")
  "Command that starts the fimls language server, as a list of strings.
The first element is the program: a name found in the variable `exec-path', or
a file name such as \"~/fimls/.venv/bin/fimls\".  It is read when
eglot starts a server."
  :type '(repeat string))

(defcustom fimls-settings nil
  "Settings for the fimls server, as a plist or an alist.
They are sent as the server's `initializationOptions', and given to
the server when it asks for the \"fimls\" section of the workspace
configuration (unless `eglot-workspace-configuration' has a
`:fimls' section, which then wins).  Keys follow the server's
README, without the \"fimls.\" prefix, e.g.

  (:completion (:maxLines 4) :context (:crossFile :json-false))

Use `:json-false' for JSON false.  Changes apply when the server
starts (\\[eglot-reconnect] restarts it)."
  :type '(choice (const :tag "Server defaults" nil)
                 (plist :tag "Settings (plist)")
                 (alist :tag "Settings (alist)")))

(defun fimls--set-major-modes (symbol value)
  "Set SYMBOL to VALUE and register fimls for those modes in eglot."
  (set-default symbol value)
  (when (fboundp 'fimls--register)
    (fimls--register)))

(defcustom fimls-major-modes
  '((python-mode . "python") (python-ts-mode . "python")
    (js-mode . "javascript") (js-ts-mode . "javascript")
    (js2-mode . "javascript") (rjsx-mode . "javascriptreact")
    (typescript-mode . "typescript") (typescript-ts-mode . "typescript")
    (tsx-ts-mode . "typescriptreact")
    (go-mode . "go") (go-ts-mode . "go")
    (rust-mode . "rust") (rust-ts-mode . "rust") (rustic-mode . "rust")
    (c-mode . "c") (c-ts-mode . "c")
    (c++-mode . "cpp") (c++-ts-mode . "cpp")
    (csharp-mode . "csharp") (csharp-ts-mode . "csharp")
    (java-mode . "java") (java-ts-mode . "java")
    (ruby-mode . "ruby") (ruby-ts-mode . "ruby") (enh-ruby-mode . "ruby")
    (lua-mode . "lua") (lua-ts-mode . "lua")
    (sh-mode . "shellscript") (bash-ts-mode . "shellscript")
    (php-mode . "php") (php-ts-mode . "php")
    (kotlin-mode . "kotlin") (kotlin-ts-mode . "kotlin")
    (swift-mode . "swift")
    (scala-mode . "scala") (scala-ts-mode . "scala")
    (haskell-mode . "haskell")
    (zig-mode . "zig") (zig-ts-mode . "zig"))
  "Major modes that eglot manages with fimls, with their LSP language ids.
Each element is (MAJOR-MODE . LANGUAGE-ID).  Modes that are not
installed are harmless.  One fimls server per project manages all
of them.  Setting this with `setopt' or Customize updates
`eglot-server-programs'; with `setq', set it before loading fimls."
  :type '(alist :key-type (symbol :tag "Major mode")
                :value-type (string :tag "Language id"))
  :set #'fimls--set-major-modes)

(defcustom fimls-idle-delay 0.2
  "Seconds of idle time after an edit before a suggestion is requested."
  :type 'number)

(defcustom fimls-auto-trigger t
  "Non-nil means ask for a suggestion automatically after each edit.
When nil, suggestions come only from \\[fimls-next]."
  :type 'boolean)

(defcustom fimls-request-timeout 30
  "Seconds to wait for an inline completion before giving up on it."
  :type 'number)

(defcustom fimls-action-timeout 120
  "Seconds to wait for a code action or a rewrite to be computed."
  :type 'number)

(defface fimls-suggestion
  '((t :inherit shadow))
  "Face of the ghost text of a fimls suggestion.")

(defface fimls-mode-line-error
  '((t :inherit error))
  "Face of the fimls mode line state when the server reports an error.")


;;;; The eglot connection

(defclass fimls-server (eglot-lsp-server) ()
  :documentation "An eglot connection to the fimls language server.")

(defun fimls--contact (&optional interactive &rest _)
  "Tell eglot how to start fimls, from `fimls-command'.
INTERACTIVE is non-nil when the user typed \\[eglot]: then a
missing program is left for eglot to ask about."
  (let* ((command (or fimls-command
                      (user-error "fimls: `fimls-command' is empty")))
         (program (car command)))
    (when (string-prefix-p "~" program)
      (setq program (expand-file-name program)))
    (unless (or interactive (executable-find program))
      (user-error "fimls: cannot run `%s': install fimls, or set `fimls-command' \
to the path of its `fimls' program" program))
    `(fimls-server ,program ,@(cdr command))))

(defun fimls--register ()
  "Put fimls first in `eglot-server-programs' for `fimls-major-modes'."
  (setq eglot-server-programs
        (cl-remove-if (lambda (entry) (eq (cdr-safe entry) #'fimls--contact))
                      eglot-server-programs))
  (when fimls-major-modes
    (push (cons (mapcar (lambda (mode) (list (car mode) :language-id (cdr mode)))
                        fimls-major-modes)
                #'fimls--contact)
          eglot-server-programs)))

(fimls--register)

(defun fimls--settings-object ()
  "The JSON object of `fimls-settings', or nil when there is none."
  fimls-settings)

(cl-defmethod eglot-initialization-options ((server fimls-server))
  "Send `fimls-settings' to SERVER, unless its contact names other options."
  (if (plist-member (eglot--saved-initargs server) :initializationOptions)
      (cl-call-next-method)
    (or (fimls--settings-object) (make-hash-table))))

(cl-defmethod eglot-client-capabilities ((_server fimls-server))
  "Return eglot's capabilities plus inline completion, for `fimls-mode'."
  (let* ((caps (copy-sequence (cl-call-next-method)))
         (text (copy-sequence (plist-get caps :textDocument))))
    (plist-put caps :textDocument
               (plist-put text :inlineCompletion
                          (list :dynamicRegistration :json-false)))))

(cl-defmethod eglot-handle-request :around
  ((_server fimls-server) (_method (eql workspace/configuration)) &key items)
  "Answer the \"fimls\" section with `fimls-settings' if eglot has none.
ITEMS are the sections the server asks for."
  (let ((answer (cl-call-next-method))
        (settings (fimls--settings-object)))
    (if (not (and settings (vectorp answer)))
        answer
      (cl-loop for item across items
               for value across answer
               collect (if (and (null value)
                                (equal (plist-get item :section) "fimls"))
                           settings
                         value)
               into values
               finally return (vconcat values)))))

(defun fimls--language-id (mode)
  "The LSP language id of major MODE from `fimls-major-modes', or nil."
  (cl-loop for (candidate . id) in fimls-major-modes
           when (provided-mode-derived-p mode candidate) return id))

(defun fimls--fix-language-id (item)
  "Give ITEM, a TextDocumentItem, the language id of its buffer's mode.
Older eglot (1.9, without `eglot--languages') gives every document of
a server the language id of the mode that started it; fimls serves
many languages at once."
  (let ((server (ignore-errors (eglot-current-server)))
        (id (fimls--language-id major-mode)))
    (if (and id (cl-typep server 'fimls-server))
        (plist-put (copy-sequence item) :languageId id)
      item)))

(unless (fboundp 'eglot--languages)
  (advice-add 'eglot--TextDocumentItem :filter-return #'fimls--fix-language-id))

(defun fimls--server-p (server)
  "Non-nil if SERVER, an eglot connection, is fimls."
  (or (cl-typep server 'fimls-server)
      (equal (plist-get (ignore-errors (eglot--server-info server)) :name)
             "fimls")))

(defun fimls--server ()
  "The live fimls server that manages the current buffer, or nil."
  (when (bound-and-true-p eglot--managed-mode)
    (let ((server (ignore-errors (eglot-current-server))))
      (and server
           (fimls--server-p server)
           (jsonrpc-running-p server)
           server))))

(defun fimls--server-or-lose ()
  "The fimls server of the current buffer, or a `user-error'."
  (or (fimls--server)
      (user-error "fimls: no fimls server manages this buffer (start one with M-x eglot)")))


;;;; Status

(defvar fimls--statuses (make-hash-table :test #'eq :weakness 'key)
  "The last `fimls/status' of each server: a plist (:state :message :model).")

(defun fimls--status (&optional server)
  "The last status plist of SERVER (default: the current buffer's)."
  (let ((server (or server (fimls--server))))
    (and server (gethash server fimls--statuses))))

(cl-defmethod eglot-handle-notification
  (server (_method (eql fimls/status)) &key state message model &allow-other-keys)
  "Keep the status SERVER reports: STATE, MESSAGE and MODEL."
  (let ((previous (plist-get (gethash server fimls--statuses) :state)))
    (puthash server (list :state state :message message :model model)
             fimls--statuses)
    (when (and (member state '("error" "unavailable")) (not (equal previous state)))
      (message "fimls: %s" message))
    (force-mode-line-update t)))

(defun fimls--mode-line ()
  "The lighter of `fimls-mode': \" fimls:\" and the server's state."
  (let* ((server (fimls--server))
         (status (and server (gethash server fimls--statuses)))
         (state (cond ((null server) "-")
                      ((plist-get status :state))
                      (t "starting"))))
    (concat " fimls:"
            (propertize state
                        'face (and (member state '("error" "unavailable")) 'fimls-mode-line-error)
                        'help-echo (if server
                                       (or (plist-get status :message) state)
                                     "No fimls server manages this buffer")))))

(defun fimls-status ()
  "Show the state of the fimls server of the current buffer."
  (interactive)
  (let* ((server (fimls--server-or-lose))
         (status (fimls--status server))
         (model (plist-get status :model)))
    (message "fimls: %s%s%s"
             (or (plist-get status :state) "starting")
             (if (plist-get status :message)
                 (format " (%s)" (plist-get status :message))
               "")
             (if model
                 (format ", model %s" (or (plist-get model :name)
                                          (plist-get model :path)))
               ""))))

(defun fimls--format-json (value indent)
  "Insert VALUE, parsed JSON, as indented lines at INDENT columns."
  (cond
   ((and (consp value) (keywordp (car value)))
    (cl-loop for (key item) on value by #'cddr
             do (insert (make-string indent ?\s) (substring (symbol-name key) 1) ":")
             (if (or (and (consp item) (keywordp (car item)))
                     (and (vectorp item) (> (length item) 0)))
                 (progn (insert "\n") (fimls--format-json item (+ indent 2)))
               (insert " " (fimls--format-scalar item) "\n"))))
   ((vectorp value)
    (cl-loop for item across value
             do (if (and (consp item) (keywordp (car item)))
                    (progn (insert (make-string indent ?\s) "-\n")
                           (fimls--format-json item (+ indent 2)))
                  (insert (make-string indent ?\s) "- "
                          (fimls--format-scalar item) "\n"))))
   (t (insert (make-string indent ?\s) (fimls--format-scalar value) "\n"))))

(defun fimls--format-scalar (value)
  "VALUE, a JSON scalar, as text."
  (pcase value
    ('nil "null")
    (:json-false "false")
    ('t "true")
    ((pred vectorp) "[]")
    ((pred stringp) value)
    (_ (format "%s" value))))

(defun fimls-stats ()
  "Show the fimls server's counters (`fimls/stats') in a help buffer."
  (interactive)
  (let ((stats (jsonrpc-request (fimls--server-or-lose) :fimls/stats (make-hash-table))))
    (with-help-window "*fimls stats*"
      (with-current-buffer standard-output
        (insert "fimls/stats\n\n")
        (fimls--format-json stats 0)))))


;;;; Ghost text

(defvar-local fimls--overlay nil "Overlay showing the current suggestion.")
(defvar-local fimls--text nil "The part of the current suggestion still shown.")
(defvar-local fimls--item nil "The InlineCompletionItem being shown.")
(defvar-local fimls--item-length 0 "Characters of the item's whole suggestion.")
(defvar-local fimls--taken 0 "Characters of the current suggestion accepted so far.")
(defvar-local fimls--active nil
  "Non-nil while a suggestion is shown: `fimls-active-mode-map' is then on.")
(defvar-local fimls--timer nil "Idle timer of the next automatic request.")
(defvar-local fimls--request nil
  "The request in flight: a plist (:id ID :server SERVER :seq SEQ).")
(defvar-local fimls--seq 0 "Number of the latest request, to recognize stale answers.")
(defvar-local fimls--pre-point nil "Point before the current command.")
(defvar-local fimls--pre-size nil "Buffer size before the current command.")
(defvar-local fimls--last-tick nil "`buffer-chars-modified-tick' after the last command.")
(defvar-local fimls--last-point nil "Point after the last command.")
(defvar fimls--active-buffer nil "The buffer where a suggestion is shown.")
(defvar fimls-mode)                     ; defined below by `define-minor-mode'
(defvar global-fimls-mode)              ; likewise
(defvar fimls--last-error nil "The last error shown: (TIME . MESSAGE).")

(defvar fimls-active-mode-map
  (let ((map (make-sparse-keymap)))
    (define-key map (kbd "TAB") #'fimls-accept)
    (define-key map (kbd "<tab>") #'fimls-accept)
    (define-key map (kbd "M-f") #'fimls-accept-word)
    (define-key map (kbd "C-<right>") #'fimls-accept-word)
    (define-key map (kbd "C-e") #'fimls-accept-line)
    (define-key map (kbd "M-<right>") #'fimls-accept-line)
    (define-key map (kbd "C-g") #'fimls-dismiss)
    (define-key map (kbd "M-]") #'fimls-next)
    map)
  "Keys active while a fimls suggestion is shown.
They take precedence over other keymaps, and only while the ghost
text is on screen; elsewhere the keys keep their usual meaning.")

(defvar fimls--emulation-alist `((fimls--active . ,fimls-active-mode-map))
  "Entry of `emulation-mode-map-alists' for `fimls-active-mode-map'.")

(add-to-list 'emulation-mode-map-alists 'fimls--emulation-alist)

(defvar fimls-mode-map
  (let ((map (make-sparse-keymap)))
    (define-key map (kbd "M-]") #'fimls-next)
    map)
  "Keymap of `fimls-mode'.")

(defconst fimls--own-commands
  '(fimls-accept fimls-accept-word fimls-accept-line fimls-dismiss fimls-next)
  "Commands that manage the suggestion themselves.")

(defun fimls--report-error (text)
  "Show the server error TEXT, unless it was just shown."
  (unless (and fimls--last-error
               (equal (cdr fimls--last-error) text)
               (< (- (float-time) (car fimls--last-error)) 10))
    (setq fimls--last-error (cons (float-time) text))
    (message "fimls: %s" text)))

(defun fimls--cancel-timer ()
  "Cancel the pending automatic request."
  (when fimls--timer
    (cancel-timer fimls--timer)
    (setq fimls--timer nil)))

(defun fimls--cancel-request ()
  "Forget the request in flight and ask the server to cancel it."
  (when fimls--request
    (let ((id (plist-get fimls--request :id))
          (server (plist-get fimls--request :server)))
      (setq fimls--request nil)
      (cl-incf fimls--seq)
      (when (and id (jsonrpc-running-p server))
        (jsonrpc-notify server :$/cancelRequest (list :id id))))))

(defun fimls--clear ()
  "Remove the suggestion from the buffer and forget it."
  (when fimls--overlay
    (delete-overlay fimls--overlay))
  (setq fimls--overlay nil
        fimls--text nil
        fimls--item nil
        fimls--item-length 0
        fimls--taken 0
        fimls--active nil)
  (when (eq fimls--active-buffer (current-buffer))
    (setq fimls--active-buffer nil)))

(defun fimls--reset ()
  "Cancel everything: the timer, the request and the suggestion."
  (fimls--cancel-timer)
  (fimls--cancel-request)
  (fimls--clear))

(defun fimls--ghost (text)
  "TEXT with the suggestion's face, the cursor before it."
  (let ((ghost (propertize text 'face 'fimls-suggestion)))
    (put-text-property 0 1 'cursor t ghost)
    ghost))

(defun fimls--display (text)
  "Show TEXT, the rest of the current suggestion, at point."
  (when fimls--overlay
    (delete-overlay fimls--overlay))
  (let ((overlay (make-overlay (point) (point) nil nil nil)))
    (overlay-put overlay 'fimls t)
    (overlay-put overlay 'window (selected-window))
    (overlay-put overlay 'priority 1000)
    (overlay-put overlay 'after-string (fimls--ghost text))
    (setq fimls--overlay overlay
          fimls--text text
          fimls--active t
          fimls--active-buffer (current-buffer))))

(defun fimls-suggestion ()
  "The ghost text shown at point, or nil if there is none."
  (and fimls--active fimls--text))

(defun fimls--item-text (item point)
  "The ghost text of ITEM for POINT, or nil if it does not fit there."
  (let* ((insert (plist-get item :insertText))
         (text (if (stringp insert) insert (plist-get insert :value)))
         (range (plist-get item :range)))
    (when (and (stringp text) (not (string-empty-p text)))
      (if (null range)
          text
        (let ((beg (eglot--lsp-position-to-point (plist-get range :start)))
              (end (eglot--lsp-position-to-point (plist-get range :end))))
          ;; The item replaces BEG..END; as ghost text it must end at point
          ;; and start with what is typed between BEG and point.
          (when (and (= end point) (<= beg point))
            (let ((typed (buffer-substring-no-properties beg point)))
              (when (and (string-prefix-p typed text)
                         (< (length typed) (length text)))
                (substring text (length typed))))))))))

(defun fimls--on-answer (buffer seq tick point result &optional invoked)
  "Show RESULT, the answer to request SEQ made in BUFFER at TICK and POINT.
INVOKED means the user asked for it: then say when there is nothing."
  (when (buffer-live-p buffer)
    (with-current-buffer buffer
      (when (eql seq fimls--seq)
        (setq fimls--request nil)
        (when (and fimls-mode
                   (eq buffer (window-buffer (selected-window)))
                   (eql tick (buffer-chars-modified-tick))
                   (eql point (point))
                   (not fimls--active))
          (let* ((items (if (vectorp result) result (plist-get result :items)))
                 (found (cl-loop for item across items
                                 for text = (fimls--item-text item point)
                                 when text return (cons item text))))
            (cond (found
                   (setq fimls--item (car found)
                         fimls--item-length (length (cdr found))
                         fimls--taken 0)
                   (fimls--display (cdr found)))
                  (invoked (message "fimls: no suggestion here")))))))))

(defun fimls--on-error (buffer seq err)
  "Handle ERR, the server's error answer to request SEQ made in BUFFER."
  (when (buffer-live-p buffer)
    (with-current-buffer buffer
      (when (eql seq fimls--seq)
        (setq fimls--request nil))))
  ;; -32800 RequestCancelled, -32801 ContentModified, -32802 ServerCancelled:
  ;; the answer is no longer wanted.
  (unless (memq (plist-get err :code) '(-32800 -32801 -32802))
    (fimls--report-error (or (plist-get err :message) "request failed"))))

(defun fimls--request-id (server value)
  "The id of the request just sent to SERVER; VALUE is what jsonrpc returned."
  (cond ((integerp value) value)
        ((and (consp value) (integerp (car value))) (car value))
        ;; jsonrpc.el up to 1.0.25 returns nil: the id is the last one used.
        (t (ignore-errors (jsonrpc--next-request-id server)))))

(declare-function eglot-path-to-uri "eglot" (path &rest args)) ; eglot >= 1.16

(defun fimls--text-document ()
  "The TextDocumentIdentifier of the current buffer, as eglot sends it."
  (if (fboundp 'eglot--TextDocumentIdentifier)
      (eglot--TextDocumentIdentifier)
    (list :uri (eglot-path-to-uri buffer-file-name))))

(defun fimls--position-params (&optional point)
  "The TextDocumentPositionParams of POINT (default: point) in this buffer.
Positions are converted by eglot, in the encoding it agreed on with
the server."
  (list :textDocument (fimls--text-document)
        :position (eglot--pos-to-lsp-position (or point (point)))))

(defun fimls--request (invoked)
  "Ask for a suggestion at point; INVOKED means the user asked explicitly."
  (let ((server (fimls--server)))
    (when (and server
               ;; An empty options object {} is read as nil: test for presence.
               (plist-member (eglot--capabilities server) :inlineCompletionProvider))
      (fimls--cancel-request)
      ;; Eglot sends buffer changes after `eglot-send-changes-idle-time';
      ;; the server must see them before it completes.
      (when (fboundp 'eglot--signal-textDocument/didChange)
        (eglot--signal-textDocument/didChange))
      (let* ((buffer (current-buffer))
             (tick (buffer-chars-modified-tick))
             (point (point))
             (seq (cl-incf fimls--seq))
             (params (append (fimls--position-params point)
                             ;; InlineCompletionTriggerKind: 1 Invoked, 2 Automatic.
                             (list :context (list :triggerKind (if invoked 1 2)))))
             (value (jsonrpc-async-request
                     server :textDocument/inlineCompletion params
                     :success-fn (lambda (result)
                                   (fimls--on-answer buffer seq tick point result
                                                     invoked))
                     :error-fn (lambda (err) (fimls--on-error buffer seq err))
                     :timeout-fn (lambda ()
                                   ;; The server may still be at it: ask it to stop.
                                   (when (buffer-live-p buffer)
                                     (with-current-buffer buffer
                                       (when (eql seq fimls--seq)
                                         (fimls--cancel-request))))
                                   (fimls--on-error buffer seq '(:code -32800)))
                     :timeout fimls-request-timeout)))
        (setq fimls--request (list :id (fimls--request-id server value)
                                   :server server
                                   :seq seq))))))

(defun fimls--wanted-p ()
  "Non-nil if an automatic suggestion may be shown now."
  (and fimls-mode
       (not buffer-read-only)
       (not executing-kbd-macro)
       (not (minibufferp))
       (eq (current-buffer) (window-buffer (selected-window)))))

(defun fimls--on-idle (buffer)
  "The idle timer of BUFFER fired: ask for a suggestion there."
  (when (buffer-live-p buffer)
    (with-current-buffer buffer
      (setq fimls--timer nil)
      (when (and (fimls--wanted-p) (not fimls--active))
        (condition-case err
            (fimls--request nil)
          (error (fimls--report-error (error-message-string err))))))))

(defun fimls--schedule ()
  "Ask for a suggestion once Emacs is idle for `fimls-idle-delay'."
  (fimls--cancel-timer)
  (when (and fimls-auto-trigger (fimls--server))
    (setq fimls--timer (run-with-idle-timer fimls-idle-delay nil
                                            #'fimls--on-idle (current-buffer)))))

(defun fimls--send-acceptance (taken)
  "Tell the server that TAKEN characters of the suggestion were accepted."
  (let* ((server (fimls--server))
         (command (plist-get fimls--item :command))
         (arguments (plist-get command :arguments)))
    (when (and server command)
      (when (or (< taken fimls--item-length) (> fimls--taken 0))
        ;; Part of the suggestion: the receipt with the count, per the
        ;; server's `fimls.accepted' convention.
        (setq arguments
              (vconcat (list (append (and (> (length arguments) 0) (aref arguments 0))
                                     (list :accepted taken)))
                       (and (> (length arguments) 1) (cl-subseq arguments 1)))))
      (condition-case err
          (jsonrpc-async-request
           server :workspace/executeCommand
           (list :command (plist-get command :command) :arguments arguments)
           :success-fn #'ignore
           :error-fn (lambda (err)
                       (fimls--report-error (or (plist-get err :message)
                                                "command failed")))
           :timeout-fn #'ignore
           :timeout fimls-request-timeout)
        (error (fimls--report-error (error-message-string err)))))))

(defun fimls--accept-part (length)
  "Insert the first LENGTH characters of the suggestion at point."
  (unless fimls--active
    (user-error "fimls: no suggestion to accept"))
  (let* ((text fimls--text)
         (part (substring text 0 length))
         (rest (substring text length)))
    (fimls--cancel-timer)
    (fimls--cancel-request)
    (delete-overlay fimls--overlay)
    (setq fimls--overlay nil)
    (insert part)
    (fimls--send-acceptance (length part))
    (cl-incf fimls--taken (length part))
    (if (string-empty-p rest)
        (progn (fimls--clear)
               (fimls--schedule))
      (fimls--display rest))))

(defun fimls--word-length (text)
  "Length of TEXT's first word, with what comes before it."
  (let ((table (syntax-table)))
    (with-temp-buffer
      (set-syntax-table table)
      (insert text)
      (goto-char (point-min))
      (forward-word 1)
      (max 1 (- (point) (point-min))))))

(defun fimls--line-length (text)
  "Length of TEXT's first line, or of its line break and second line."
  (let ((break (string-search "\n" text)))
    (cond ((null break) (length text))
          ((> break 0) break)
          (t (or (string-search "\n" text 1) (length text))))))

(defun fimls-accept ()
  "Insert the whole suggestion."
  (interactive)
  (unless fimls--active
    (user-error "fimls: no suggestion to accept"))
  (fimls--accept-part (length fimls--text)))

(defun fimls-accept-word ()
  "Insert the next word of the suggestion."
  (interactive)
  (unless fimls--active
    (user-error "fimls: no suggestion to accept"))
  (fimls--accept-part (fimls--word-length fimls--text)))

(defun fimls-accept-line ()
  "Insert the rest of the suggestion's current line."
  (interactive)
  (unless fimls--active
    (user-error "fimls: no suggestion to accept"))
  (fimls--accept-part (fimls--line-length fimls--text)))

(defun fimls-dismiss ()
  "Hide the suggestion and cancel the request in flight."
  (interactive)
  (fimls--reset))

(defun fimls-next ()
  "Ask for another suggestion now (an explicitly invoked request).
With no suggestion shown, ask for one; this also completes where
automatic requests do not, e.g. in comments."
  (interactive)
  (fimls--reset)
  (unless (fimls--server)
    (user-error "fimls: no fimls server manages this buffer"))
  (fimls--request t))

(defun fimls--pre-command ()
  "Remember point and size before a command, to see what it typed."
  (setq fimls--pre-point (point)
        fimls--pre-size (buffer-size)))

(defun fimls--typed-through ()
  "If the last command typed the start of the suggestion, keep its rest.
Return non-nil if the suggestion is still shown."
  (when (and fimls--active fimls--pre-point
             (> (point) fimls--pre-point)
             (= (- (point) fimls--pre-point) (- (buffer-size) fimls--pre-size)))
    (let ((typed (buffer-substring-no-properties fimls--pre-point (point))))
      (when (and (string-prefix-p typed fimls--text)
                 (< (length typed) (length fimls--text)))
        (fimls--display (substring fimls--text (length typed)))
        t))))

(defun fimls--post-command ()
  "Dismiss or keep the suggestion after a command; maybe ask for a new one."
  (let* ((tick (buffer-chars-modified-tick))
         (edited (not (eql tick fimls--last-tick)))
         (moved (not (eql (point) fimls--last-point))))
    (setq fimls--last-tick tick
          fimls--last-point (point))
    (cond ((memq this-command fimls--own-commands))
          ((fimls--typed-through))
          ((or edited moved)
           (fimls--reset)
           (when (and edited (fimls--wanted-p))
             (fimls--schedule)))
          ;; Any other command hides the suggestion.  (The hook also runs,
          ;; with no command, when a recursive edit starts.)
          (this-command (fimls--clear)))))

(defun fimls--global-post-command ()
  "Dismiss a suggestion left in a buffer the user switched away from."
  (when (and fimls--active-buffer
             (not (eq fimls--active-buffer (current-buffer))))
    (if (buffer-live-p fimls--active-buffer)
        (with-current-buffer fimls--active-buffer (fimls--reset))
      (setq fimls--active-buffer nil))))

;;;###autoload
(define-minor-mode fimls-mode
  "Show fimls's code completions as ghost text at point.
The buffer must be managed by eglot with the fimls server.  After
you type and pause for `fimls-idle-delay' seconds, the suggestion
appears; while it is shown:

\\{fimls-active-mode-map}
Any other command dismisses it.  \\[fimls-next] asks for a
suggestion at any time."
  :lighter (:eval (fimls--mode-line))
  :keymap fimls-mode-map
  :group 'fimls
  (fimls--reset)
  (if fimls-mode
      (progn
        (setq fimls--last-tick (buffer-chars-modified-tick)
              fimls--last-point (point))
        (add-hook 'pre-command-hook #'fimls--pre-command nil t)
        (add-hook 'post-command-hook #'fimls--post-command nil t)
        (add-hook 'post-command-hook #'fimls--global-post-command)
        (add-hook 'kill-buffer-hook #'fimls--reset nil t)
        (add-hook 'change-major-mode-hook #'fimls--reset nil t))
    (remove-hook 'pre-command-hook #'fimls--pre-command t)
    (remove-hook 'post-command-hook #'fimls--post-command t)
    (remove-hook 'kill-buffer-hook #'fimls--reset t)
    (remove-hook 'change-major-mode-hook #'fimls--reset t)))

(defun fimls--on-managed ()
  "Turn on `fimls-mode' when eglot manages the buffer with fimls."
  (if (and global-fimls-mode (fimls--server))
      (unless fimls-mode (fimls-mode 1))
    (when fimls-mode (fimls--reset))))

;;;###autoload
(define-minor-mode global-fimls-mode
  "Turn on `fimls-mode' in every buffer eglot manages with fimls."
  :global t
  :group 'fimls
  (if global-fimls-mode
      (progn
        (add-hook 'eglot-managed-mode-hook #'fimls--on-managed)
        (dolist (buffer (buffer-list))
          (with-current-buffer buffer
            (when (fimls--server) (fimls-mode 1)))))
    (remove-hook 'eglot-managed-mode-hook #'fimls--on-managed)
    (dolist (buffer (buffer-list))
      (with-current-buffer buffer
        (when fimls-mode (fimls-mode -1))))))


;;;; Code actions

(defvar fimls-rewrite-history nil "Instructions given to `fimls-rewrite'.")

(defun fimls--read-instruction ()
  "Ask the user how to rewrite the code."
  (let ((instruction (string-trim (read-string "fimls rewrite instruction: "
                                               nil 'fimls-rewrite-history))))
    (when (string-empty-p instruction)
      (user-error "fimls: a rewrite needs an instruction"))
    instruction))

(defun fimls--rewrite-arguments (command arguments)
  "ARGUMENTS of COMMAND, with the user's instruction if it is a rewrite.
The server's \"Rewrite selection...\" action is the command
`fimls.rewrite' with one argument; it needs the instruction as
its second."
  (if (and (equal (format "%s" command) "fimls.rewrite")
           (= (length arguments) 1))
      (vconcat arguments (list (fimls--read-instruction)))
    arguments))

(cl-defmethod eglot-execute-command ((server fimls-server) command arguments)
  "Run COMMAND with ARGUMENTS on SERVER, allowing for the model's time.
This is how older eglot (1.9) runs code actions; a rewrite asks for
its instruction first."
  (jsonrpc-request server :workspace/executeCommand
                   (list :command (format "%s" command)
                         :arguments (fimls--rewrite-arguments command arguments))
                   :timeout fimls-action-timeout))

(defun fimls--complete-action (action)
  "ACTION, a Command or ExecuteCommandParams, with a rewrite's instruction."
  (let ((command (plist-get action :command)))
    (if (not (stringp command))
        action                          ; a CodeAction: its command comes back here
      (let* ((arguments (plist-get action :arguments))
             (completed (fimls--rewrite-arguments command arguments)))
        (if (eq completed arguments)
            action
          (plist-put (copy-sequence action) :arguments completed))))))

(when (fboundp 'eglot-execute)
  ;; Newer eglot (Emacs 30's) runs code actions, resolving them first,
  ;; through `eglot-execute'.  The model may need longer than jsonrpc's default
  ;; timeout to compute an edit.
  (cl-defmethod eglot-execute :around ((server fimls-server) action)
    "Execute ACTION on SERVER: ask for a rewrite's instruction, wait longer."
    (let ((jsonrpc-default-request-timeout
           (max jsonrpc-default-request-timeout fimls-action-timeout)))
      (cl-call-next-method server (fimls--complete-action action)))))

(defun fimls--action-command (action)
  "The Command object of ACTION, a Command or a CodeAction."
  (let ((command (plist-get action :command)))
    (if (stringp command) action command)))

(defun fimls--rewrite-bounds ()
  "The region, or the definition at point, or the current line: (BEG END)."
  (cond ((use-region-p) (list (region-beginning) (region-end)))
        ((let ((bounds (bounds-of-thing-at-point 'defun)))
           (and bounds (list (car bounds) (cdr bounds)))))
        (t (list (line-beginning-position) (line-end-position)))))

(defun fimls--code-actions (server beg end)
  "SERVER's code actions for BEG..END, as a list."
  (when (fboundp 'eglot--signal-textDocument/didChange)
    (eglot--signal-textDocument/didChange))
  (append (jsonrpc-request
           server :textDocument/codeAction
           (list :textDocument (fimls--text-document)
                 :range (list :start (eglot--pos-to-lsp-position beg)
                              :end (eglot--pos-to-lsp-position end))
                 :context (list :diagnostics [])))
          nil))

;;;###autoload
(defun fimls-rewrite (beg end instruction)
  "Rewrite the code between BEG and END with the model, following INSTRUCTION.
Interactively, BEG and END are the region, or the definition at
point when no region is active (the current line outside one).
The server computes the new code and sends the edit, which eglot
applies."
  (interactive
   (progn
     (fimls--server-or-lose)
     (append (fimls--rewrite-bounds) (list (fimls--read-instruction)))))
  (when (= beg end)
    (let ((bounds (save-excursion (goto-char beg) (fimls--rewrite-bounds))))
      (setq beg (car bounds) end (cadr bounds))))
  (let* ((server (fimls--server-or-lose))
         (action (cl-find-if
                  (lambda (action)
                    (equal (plist-get (fimls--action-command action) :command)
                           "fimls.rewrite"))
                  (fimls--code-actions server beg end)))
         (command (and action (fimls--action-command action))))
    (unless command
      (user-error "fimls: no rewrite offered here"))
    (message "fimls: rewriting...")
    (jsonrpc-request server :workspace/executeCommand
                     (list :command "fimls.rewrite"
                           :arguments (vconcat (plist-get command :arguments)
                                               (list instruction)))
                     :timeout fimls-action-timeout)
    (message "fimls: rewriting...done")))

(provide 'fimls)
;;; fimls.el ends here
