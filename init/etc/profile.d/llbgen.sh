# llbgen: installed as /etc/profile.d/llbgen.sh (login shells) and sourced from
# /etc/bash.bashrc (interactive non-login bash) by /init/boot/boot.sh. POSIX sh.
#
# - PATH: Debian's /etc/profile resets root's PATH, dropping the container's (CUDA, NVIDIA
#   and Miniconda directories); put the container's PATH, saved at boot in /etc/environment,
#   back in front, and /root/miniconda3/bin first.
# - LANG and TZ: Chinese locale and China time unless the container says otherwise.
# - The login banner (/init/bin/login-banner), once per interactive login.

if [ -r /etc/environment ]; then
    _llbgen_path=$(sed -n 's/^PATH=//p' /etc/environment 2>/dev/null | tail -n 1)
    if [ -n "$_llbgen_path" ]; then
        _llbgen_rest=$PATH
        PATH=$_llbgen_path
        _llbgen_ifs=$IFS
        IFS=:
        for _llbgen_dir in $_llbgen_rest; do
            case ":$PATH:" in *":$_llbgen_dir:"*) ;; *) PATH=$PATH:$_llbgen_dir ;; esac
        done
        IFS=$_llbgen_ifs
    fi
    unset _llbgen_path _llbgen_rest _llbgen_ifs _llbgen_dir
fi
case ":$PATH:" in
    :/root/miniconda3/bin:*) ;;
    *) PATH=/root/miniconda3/bin:$(printf '%s' "$PATH" | sed -e 's#^/root/miniconda3/bin:##' -e 's#:/root/miniconda3/bin:#:#g' -e 's#:/root/miniconda3/bin$##') ;;
esac
export PATH

: "${LANG:=zh_CN.UTF-8}"
: "${TZ:=Asia/Shanghai}"
export LANG TZ

# Banner: interactive shells only (never `ssh host cmd`), login shells only (not every
# Jupyter terminal or tmux pane), and once (tmux and nested logins inherit the marker).
case $- in
    *i*)
        if [ -z "${LLBGEN_BANNER_SHOWN:-}" ] && [ -x /init/bin/login-banner ]; then
            # shellcheck disable=SC3044  # shopt runs only under bash
            if [ -z "${BASH_VERSION:-}" ] || shopt -q login_shell 2>/dev/null; then
                LLBGEN_BANNER_SHOWN=1
                export LLBGEN_BANNER_SHOWN
                /init/bin/login-banner
            fi
        fi
        ;;
esac
