// Shell completion scripts for bash and zsh, generated from the command tree commander holds, so a new
// command or flag completes without anyone editing a script. Rollout names complete from the controller
// (`modelroll list -o name`, with the --server/--token given on the line in bash, the environment's in zsh).
// Pure: text in, text out.

export interface CompletionTree {
  program: string;
  globalFlags: string[];
  commands: Array<{
    name: string;
    aliases: string[];
    description: string;
    flags: string[];
    /** Flag -> the values it accepts. */
    choices: Record<string, string[]>;
    /** The first argument is a rollout name. */
    takesRollout: boolean;
    /** Flags whose value is a file path. */
    fileFlags: string[];
    positionalChoices: string[];
  }>;
}

const words = (list: readonly string[]) => list.join(" ");
const shellName = (program: string) => program.replace(/[^A-Za-z0-9_]/g, "_");

export function completionScript(shell: "bash" | "zsh", tree: CompletionTree): string {
  return shell === "bash" ? bashScript(tree) : zshScript(tree);
}

function bashScript(tree: CompletionTree): string {
  const fn = `_${shellName(tree.program)}_complete`;
  const names = tree.commands.flatMap((c) => [c.name, ...c.aliases]);
  const cases = tree.commands.map((c) => {
    const choiceCases = Object.entries(c.choices).map(([flag, values]) => `        ${flag}) COMPREPLY=($(compgen -W "${words(values)}" -- "$cur")); return ;;`);
    const fileCase = c.fileFlags.length > 0 ? [`        ${c.fileFlags.join("|")}) COMPREPLY=($(compgen -f -- "$cur")); return ;;`] : [];
    const positional = c.takesRollout
      ? `      if [[ $cur != -* && $npos -eq 0 ]]; then COMPREPLY=($(compgen -W "$(${tree.program} "\${conn[@]}" list -o name 2>/dev/null)" -- "$cur")); return; fi`
      : c.positionalChoices.length > 0
        ? `      if [[ $cur != -* && $npos -eq 0 ]]; then COMPREPLY=($(compgen -W "${words(c.positionalChoices)}" -- "$cur")); return; fi`
        : "";
    return [
      `    ${[c.name, ...c.aliases].join("|")})`,
      `      case "$prev" in`,
      ...choiceCases,
      ...fileCase,
      `      esac`,
      ...(positional ? [positional] : []),
      `      COMPREPLY=($(compgen -W "${words([...c.flags, ...tree.globalFlags])}" -- "$cur"))`,
      `      ;;`,
    ].join("\n");
  });
  return `# bash completion for ${tree.program}: source <(${tree.program} completion bash)
${fn}() {
  local cur prev cmd i npos=0
  local -a conn=()
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      --server|--token) conn+=("\${COMP_WORDS[i]}" "\${COMP_WORDS[i+1]}"); ((i++)) ;;
      -*) ;;
      *) if [[ -z $cmd ]]; then cmd="\${COMP_WORDS[i]}"; else ((npos++)); fi ;;
    esac
  done
  if [[ -z $cmd ]]; then
    COMPREPLY=($(compgen -W "${words([...names, ...tree.globalFlags])}" -- "$cur"))
    return
  fi
  case "$cmd" in
${cases.join("\n")}
  esac
}
complete -F ${fn} ${tree.program}
`;
}

function zshQuote(text: string): string {
  return text.replace(/'/g, "'\\''").replace(/:/g, "\\:");
}

function zshScript(tree: CompletionTree): string {
  const fn = `_${shellName(tree.program)}`;
  const commandList = tree.commands.flatMap((c) => [c.name, ...c.aliases].map((n) => `    '${zshQuote(n)}:${zshQuote(c.description)}'`));
  const cases = tree.commands.map((c) => {
    const specs = [...new Set(c.flags)].map((flag) => {
      const values = c.choices[flag];
      if (values) return `'${flag}[]:value:(${words(values)})'`;
      if (c.fileFlags.includes(flag)) return `'${flag}[]:file:_files'`;
      return `'${flag}[]'`;
    });
    const positional = c.takesRollout
      ? ["'1:rollout:_modelroll_rollouts'"]
      : c.positionalChoices.length > 0
        ? [`'1:shell:(${words(c.positionalChoices)})'`]
        : [];
    return `      (${[c.name, ...c.aliases].join("|")}) _arguments -s ${[...specs, ...positional, "'*::arg:_default'"].join(" ")} ;;`;
  });
  return `#compdef ${tree.program}
# zsh completion for ${tree.program}: source <(${tree.program} completion zsh), or save as _${tree.program} on $fpath
_modelroll_rollouts() {
  local -a names
  names=(\${(f)"$(${tree.program} list -o name 2>/dev/null)"})
  _describe 'rollout' names
}
${fn}() {
  local -a commands
  commands=(
${commandList.join("\n")}
  )
  local state line
  _arguments -C \\
    '--server[controller base URL]:url:' \\
    '--token[API bearer token]:token:' \\
    '--no-color[no colors]' \\
    '(-h --help)'{-h,--help}'[help]' \\
    '(-V --version)'{-V,--version}'[version]' \\
    '1:command:->command' \\
    '*::arg:->args'
  case $state in
    (command) _describe 'command' commands ;;
    (args)
      case $line[1] in
${cases.join("\n")}
      esac ;;
  esac
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  ${fn} "$@"
else
  compdef ${fn} ${tree.program}
fi
`;
}
