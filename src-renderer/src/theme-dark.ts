/** naive-ui's dark theme in its own chunk (see App.vue). */
export { darkTheme } from 'naive-ui';
