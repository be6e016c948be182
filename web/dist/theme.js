// Light and dark themes: follow the system (prefers-color-scheme) until the
// user picks one with the toggle; the choice is kept in localStorage.

const KEY = 'monitor.theme';
const media = matchMedia('(prefers-color-scheme: dark)');

export function initTheme(button, onChange) {
  let choice = null;
  try { choice = localStorage.getItem(KEY); } catch { /* storage disabled: follow the system */ }
  const apply = () => {
    const theme = choice ?? (media.matches ? 'dark' : 'light');
    const next = theme === 'dark' ? 'light' : 'dark';
    document.documentElement.dataset.theme = theme;
    button.textContent = theme === 'dark' ? '☀ Light' : '☾ Dark';
    button.setAttribute('aria-label', `Switch to the ${next} theme`);
    button.title = `Switch to the ${next} theme (saved in this browser)`;
    onChange?.(theme);
  };
  button.addEventListener('click', () => {
    choice = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
    try { localStorage.setItem(KEY, choice); } catch { /* applied for this page only */ }
    apply();
  });
  media.addEventListener('change', () => { if (!choice) apply(); });
  apply();
}
